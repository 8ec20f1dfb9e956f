"""Face detection (dlib HOG), landmarks and aligned crops.

Detection runs on a copy of the frame downscaled so its longer side is at
most ``max_side`` (HOG cost grows with pixels; 640 keeps a frame near 0.1 s
on one core with upsample 1), and boxes are mapped back to full resolution.
Landmarks are then fitted on the full-resolution frame, where they are more
precise and cost little.

Defaults follow DeepfakeBench (largest face, upsample 1, 256x256 crops at
scale 1.3) except ``min_score``: DeepfakeBench keeps every HOG detection
(threshold 0.0); we default to 0.3 because at 0.0 the mission patch in
scikit-image's astronaut photo scores 0.12 and is 90 px wide against the
face's 91, one pixel from being "the largest face". True faces there score
0.6-1.5 even at JPEG quality 10 or blurred. Pass ``min_score=0.0`` for the
exact DeepfakeBench protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np

from .align import align_crop, five_points
from .models import find_landmark_model

__all__ = ["Face", "FaceBox", "FaceDetector"]

MODES = ("largest", "all")


@dataclass(frozen=True)
class FaceBox:
    """A detection in full-resolution pixel coordinates: ``box`` = (x0, y0, x1, y1)."""

    box: np.ndarray
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))


@dataclass(frozen=True)
class Face:
    """An aligned face and everything needed to map results back to the frame."""

    box: np.ndarray  #: (4,) float, x0, y0, x1, y1 in frame pixels
    score: float  #: HOG detector score
    landmarks: np.ndarray  #: (K, 2) landmarks from the model (K = 5, 68 or 81), frame pixels
    points: np.ndarray  #: (5, 2) ArcFace-ordered points used for alignment, frame pixels
    crop: np.ndarray  #: (size, size, 3) uint8 aligned face
    matrix: np.ndarray  #: (2, 3) affine map from frame pixels to crop pixels

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) affine map from crop pixels back to frame pixels."""
        return cv2.invertAffineTransform(self.matrix)

    def to_frame(self, xy) -> np.ndarray:
        """Map (N, 2) crop coordinates to frame coordinates."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        inv = self.inverse
        return xy @ inv[:, :2].T + inv[:, 2]

    def heatmap_to_frame(self, heatmap: np.ndarray, frame_shape) -> np.ndarray:
        """Warp a crop-space map (any size, resized to the crop first) into frame space; 0 outside."""
        size = self.crop.shape[0]
        heatmap = np.asarray(heatmap, dtype=np.float32)
        if heatmap.shape[:2] != (size, size):
            heatmap = cv2.resize(heatmap, (size, size), interpolation=cv2.INTER_LINEAR)
        h, w = frame_shape[:2]
        return cv2.warpAffine(heatmap, self.matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


class FaceDetector:
    """Detect, landmark and align faces in RGB uint8 frames.

    ``detector(frame)`` returns a list of :class:`Face` (largest first; one
    at most in "largest" mode; empty when there is no face). Create one
    detector per thread.

    ``coarse_first`` (largest mode only): look for faces without upsampling
    first (faces of 80 px and more, about 4x cheaper) and run the upsampled
    pass (DeepfakeBench's setting, faces from 40 px) only when that finds
    none. Set it to False for DeepfakeBench's exact detection.
    """

    def __init__(
        self,
        *,
        mode: str = "largest",
        max_side: int = 640,
        upsample: int = 1,
        min_score: float = 0.3,
        size: int = 256,
        scale: float = 1.3,
        landmark_model=None,
        coarse_first: bool = True,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if max_side < 32 or upsample < 0 or size < 16 or scale <= 0:
            raise ValueError("need max_side >= 32, upsample >= 0, size >= 16, scale > 0")
        self.mode, self.max_side, self.upsample = mode, int(max_side), int(upsample)
        self.min_score, self.size, self.scale = float(min_score), int(size), float(scale)
        self.coarse_first = bool(coarse_first)
        self.landmark_model = find_landmark_model(landmark_model)
        self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(self.landmark_model))

    def detect(self, image: np.ndarray, mode: str | None = None) -> list[FaceBox]:
        """Face boxes in full-resolution coordinates, largest first."""
        image = _as_rgb(image)
        h, w = image.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        small = image if factor == 1.0 else cv2.resize(
            image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
        )
        rects, scores = [], []
        if (mode or self.mode) == "largest" and self.upsample > 0 and self.coarse_first:
            # Without upsampling HOG finds faces of 80 px and more at about a quarter
            # of the cost; the upsampled pass runs only when that finds nothing.
            rects, scores, _ = self._hog.run(small, 0, self.min_score)
        if not len(rects):
            rects, scores, _ = self._hog.run(small, self.upsample, self.min_score)
        # dlib rectangles are inclusive; store half-open boxes, then undo the downscale.
        boxes = [
            FaceBox(np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], dtype=np.float64) / factor, float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
        boxes.sort(key=lambda b: b.area, reverse=True)  # stable: ties keep dlib's order
        return boxes[:1] if (mode or self.mode) == "largest" else boxes

    def landmarks(self, image: np.ndarray, box) -> np.ndarray:
        """(K, 2) landmarks of the face in ``box`` (FaceBox or x0, y0, x1, y1), frame pixels."""
        image = _as_rgb(image)
        x0, y0, x1, y1 = (int(round(v)) for v in getattr(box, "box", box))
        shape = self._shape(image, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def align(self, image: np.ndarray, box: FaceBox) -> Face:
        """Landmarks and the aligned crop for one detection."""
        image = _as_rgb(image)
        marks = self.landmarks(image, box)
        points = five_points(marks)
        crop, matrix = align_crop(image, points, self.size, self.scale)
        return Face(box=box.box, score=box.score, landmarks=marks, points=points, crop=crop, matrix=matrix)

    def __call__(self, image: np.ndarray, mode: str | None = None) -> list[Face]:
        image = _as_rgb(image)
        return [self.align(image, box) for box in self.detect(image, mode)]


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    return np.ascontiguousarray(image)
