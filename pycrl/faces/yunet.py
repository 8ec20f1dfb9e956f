"""Face detection with YuNet (OpenCV Zoo, MIT), then dlib's landmarks and the same alignment.

YuNet is a small anchor-free CNN (53 k parameters); pycrl bundles it folded to float32
(``pycrl/assets/yunet``, made by ``python -m pycrl.train.tools.fold_yunet``) and runs it on one of
pycrl's CPU backends (ONNX Runtime, else OpenVINO). Those take a fixed image size, so there is one
graph per input size: 640x384 (landscape video: a 16:9 frame fills it), 384x640 (portrait video)
and 640x640. A frame is letterboxed (scaled down to fit, never up; padded right and bottom) into
the size that shows it largest, the cheapest of those on a tie (each graph is opened the first
time a frame needs it), several frames go in one batch, and the head's twelve outputs are
decoded here (`decode`).

**The head.** For each stride s in 8, 16, 32 the graph gives, per cell of the (H/s) x (W/s)
grid in row-major order: ``cls_s`` and ``obj_s`` (sigmoid, face class and objectness; the
score is their geometric mean), ``bbox_s`` (dx, dy, log w, log h: the box centre is the cell's
corner plus (dx, dy) cells, its size exp(.) cells) and ``kps_s`` (five (x, y) offsets in cells
from the cell's corner): eye centres, nose tip, mouth corners, image left first, which is
ArcFace's order.

**DeepfakeBench-compatible crops.** DeepfakeBench and the default model's training corpus
align with dlib's landmarks fitted inside dlib's HOG box. YuNet's box is taller (forehead to
chin) than dlib's, so it is first mapped to the box HOG would have drawn (`DLIB_BOX`, a linear
map fitted on faces both detectors find), dlib's 5-point model runs in that box on the
full-resolution frame, and the alignment is `align_crop` as on the dlib path. With
``landmarks="yunet"`` YuNet's own five points are used instead (no dlib call). Those are other
points (eye centres where dlib has eye corners, the real mouth corners where the dlib path
places the template's), so the crops differ from DeepfakeBench's: by 26 px on average at the
crop corners on the allowed photos, mostly in roll and scale on tilted heads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from pycrl.options import DEFAULT_FACE_MIN_SCORE, DEFAULT_FACE_MIN_SIZE

from .align import align_crop, five_points
from .detector import MODES, Face, FaceBox, _as_rgb
from .models import find_landmark_model

__all__ = ["DLIB_BOX", "LANDMARK_MODES", "MIN_FACE", "MIN_SCORE", "YUNET_MODELS", "YuNetBox", "YuNetDetector",
           "decode", "nms"]

#: The bundled graphs, ``yunet_<W>x<H>.onnx`` (float32, input (N, 3, H, W) BGR 0-255; NOTICE.md).
YUNET_MODELS = Path(__file__).resolve().parents[1] / "assets" / "yunet"

STRIDES = (8, 16, 32)
#: The graph's outputs in order. Matched by position: OpenVINO may report a tensor by another
#: of its names (``cls_8`` comes back as the name of the Reshape feeding its Sigmoid).
OUTPUTS = tuple(f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in STRIDES)

#: Where the five alignment points come from: dlib's 5-point model in the mapped box
#: (DeepfakeBench's crops) or YuNet's own points (no dlib at all).
LANDMARK_MODES = ("dlib5", "yunet")

#: Smallest face kept (the longer side of YuNet's box, frame pixels) and smallest YuNet score
#: kept: chosen by measurement, see `pycrl.options` (ScoringOptions.face_min_size/face_min_score).
MIN_FACE = DEFAULT_FACE_MIN_SIZE
MIN_SCORE = DEFAULT_FACE_MIN_SCORE
#: Boxes overlapping a better one by more than this IoU are the same face.
NMS_IOU = 0.3
#: At most this many candidates enter NMS per frame (the best-scoring ones).
TOP_K = 500

#: YuNet box -> the square box dlib's HOG detector draws around the same face, as
#: (centre x shift / width, centre y shift / height, side per width, side per height):
#: centre = YuNet's centre + shifts, side = 0.560 w + 0.401 h. Least squares on 500 faces both
#: detectors find (dlib with upsample 1, DeepfakeBench's setting) in the allowed photos of
#: pycrl/train/corpus/sources.py, as they are and rotated by +-10 degrees, scaled by 0.75 and mirrored
#: (Solvay 1927 as three full-resolution crops, where HOG finds its faces). dlib's box is then
#: matched to 10 % of its side on average; the aligned crops land 1.27 px (mean corner distance
#: at 256x256) from the dlib path's on the 41 faces of the unaltered photos, 2.35 px on all 500
#: (2.37 px leaving each photo out of the fit). dlib's landmarks are whole pixels, so a box a
#: little off either reproduces them exactly or moves a point by 1 px, i.e. 2-3 px of crop at
#: these face sizes: the dlib path itself, with its two boxes for one face (the upsampled pass
#: and the coarse first pass of "largest" mode), differs by 1.33 px on the same faces.
DLIB_BOX = (-0.0013, 0.0521, 0.5598, 0.4010)


@dataclass(frozen=True)
class YuNetBox(FaceBox):
    """A YuNet detection in frame pixels: its box, score and five points (ArcFace order)."""

    points: np.ndarray  #: (5, 2) eye centres, nose tip, mouth corners, image left first


def letterbox(image: np.ndarray, height: int, width: int, out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """``image`` (RGB, HWC) scaled to fit (height, width), never enlarged, at the top-left of a
    black canvas: the canvas (BGR, float32, CHW; ``out`` when given, which must be zeros) and
    the scale (frame px -> canvas px). Channels are copied plane by plane: a strided HWC -> CHW
    copy costs several times more."""
    h, w = image.shape[:2]
    scale = min(1.0, width / w, height / h)
    if scale < 1.0:
        size = (max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale))))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((3, height, width), np.float32) if out is None else out
    sh, sw = image.shape[:2]
    for k, plane in enumerate(cv2.split(image)):  # R, G, B -> planes 2, 1, 0
        canvas[2 - k, :sh, :sw] = plane
    return canvas, scale


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def decode(outputs: dict[str, np.ndarray], index: int, height: int, width: int, *, min_score: float,
           iou: float = NMS_IOU, top_k: int = TOP_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N, 4: x0, y0, x1, y1), scores (N,) and points (N, 5, 2) of batch item ``index``,
    in input pixels, after the score threshold and NMS, best first."""
    boxes, scores, points = [], [], []
    for s in STRIDES:
        cols = width // s
        cls = outputs[f"cls_{s}"][index, :, 0]
        obj = outputs[f"obj_{s}"][index, :, 0]
        score = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        cells = np.flatnonzero(score >= min_score)
        if not len(cells):
            continue
        corner = np.stack([cells % cols, cells // cols], axis=1).astype(np.float64)  # (x, y) in cells
        reg = outputs[f"bbox_{s}"][index, cells].astype(np.float64)
        centre = (corner + reg[:, :2]) * s
        size = np.exp(np.minimum(reg[:, 2:], 10.0)) * s  # clamp: exp of garbage must stay finite
        boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
        kps = outputs[f"kps_{s}"][index, cells].astype(np.float64).reshape(-1, 5, 2)
        points.append((corner[:, None, :] + kps) * s)
        scores.append(score[cells].astype(np.float64))
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    b, sc, p = np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
    if len(sc) > top_k:
        best = np.argsort(-sc, kind="stable")[:top_k]
        b, sc, p = b[best], sc[best], p[best]
    keep = nms(b, sc, iou)
    return b[keep], sc[keep], p[keep]


def dlib_box(box: np.ndarray) -> np.ndarray:
    """The square box dlib's HOG detector would draw around the face YuNet boxed (`DLIB_BOX`)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    w, h = x1 - x0, y1 - y0
    dx, dy, per_w, per_h = DLIB_BOX
    cx, cy, half = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h, (per_w * w + per_h * h) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def graphs(model: str | Path | None = None) -> dict[tuple[int, int], Path]:
    """(width, height) -> graph file: the ``yunet_<W>x<H>.onnx`` files of folder ``model`` (default
    the bundled ones), or the one ``.onnx`` file ``model`` (its size read when it is opened)."""
    path = Path(model) if model is not None else YUNET_MODELS
    if path.suffix == ".onnx":
        return {(0, 0): path}
    found = {}
    for file in sorted(path.glob("yunet_*x*.onnx")):
        w, _, h = file.stem.split("_")[-1].partition("x")
        if w.isdigit() and h.isdigit():
            found[(int(w), int(h))] = file
    if not found:
        raise FileNotFoundError(f"no yunet_<W>x<H>.onnx graph in {path}")
    return found


def pick_size(sizes, height: int, width: int) -> tuple[int, int]:
    """The input size that shows a (height, width) frame largest (scaled down to fit, never
    up), the smallest of those on a tie."""
    return max(sizes, key=lambda wh: (min(1.0, wh[0] / width, wh[1] / height), -wh[0] * wh[1]))


def open_yunet(path: str | Path, backend: str = "auto", threads: int | None = None):
    """A YuNet graph on a pycrl CPU backend: ``backend`` "onnxruntime" or "openvino", or "auto"
    (ONNX Runtime, else OpenVINO: on a 2-core Xeon, 32 frames at 640x384 take ONNX Runtime
    127 ms and OpenVINO 173 ms, medians of 5 interleaved rounds). Always f32: OpenVINO's bf16 was
    no faster on this small graph (222 vs 218 ms) and would move its boxes."""
    from pycrl.runtime import BackendUnavailable, open_backend

    names = ("onnxruntime", "openvino") if backend == "auto" else (backend,)
    reasons = []
    for name in names:
        try:
            return open_backend(name, Path(path), precision="f32", threads=threads)
        except BackendUnavailable as err:
            reasons.append(f"{name}: {err.reason}")
    raise BackendUnavailable(backend, "YuNet needs ONNX Runtime or OpenVINO (" + "; ".join(reasons) + ")")


class YuNetDetector:
    """Detect faces with YuNet, landmark and align them; RGB uint8 frames in, `Face` lists out.

    Safe to share between threads: the backends serve concurrent calls and each thread gets
    its own dlib landmark model. ``detector(frame)`` is one frame; ``detector.batch(frames)``
    runs YuNet once over several (once per input size among them).

    ``model``: a folder of ``yunet_<W>x<H>.onnx`` graphs (default: the bundled ones) or one
    ``.onnx`` file; ``backend``: "auto" | "onnxruntime" | "openvino".
    """

    def __init__(
        self,
        *,
        mode: str = "largest",
        size: int = 256,
        scale: float = 1.3,
        min_face: int = MIN_FACE,
        min_score: float = MIN_SCORE,
        landmarks: str = "dlib5",
        backend: str = "auto",
        threads: int | None = None,
        model: str | Path | None = None,
        landmark_model=None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if landmarks not in LANDMARK_MODES:
            raise ValueError(f"landmarks must be one of {LANDMARK_MODES}, got {landmarks!r}")
        if size < 16 or scale <= 0 or min_face < 0 or not 0.0 <= min_score <= 1.0:
            raise ValueError("need size >= 16, scale > 0, min_face >= 0 and min_score in [0, 1]")
        self.mode, self.size, self.scale = mode, int(size), float(scale)
        self.min_face, self.min_score, self.landmark_mode = int(min_face), float(min_score), landmarks
        self.landmark_model = find_landmark_model(landmark_model) if landmarks == "dlib5" else None
        self.backend, self.threads = backend, threads
        self._nets: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        files = graphs(model)
        if (0, 0) in files:  # one file: its size is the graph's
            net = self._open(files[(0, 0)])
            wh = (int(net.input_shape[2]), int(net.input_shape[1]))
            self._files, self._nets = {wh: files[(0, 0)]}, {wh: net}
        else:  # open the one for 720p video now: a backend that cannot run fails here, not later
            self._files = files
            self._net(pick_size(files, 720, 1280))

    @property
    def sizes(self) -> tuple[tuple[int, int], ...]:
        """The (width, height) input sizes this detector can letterbox into."""
        return tuple(self._files)

    def _open(self, path: Path) -> Any:
        net = open_yunet(path, self.backend, self.threads)
        if len(net.output_names) != len(OUTPUTS) or net.input_shape[0] != 3 \
                or net.input_shape[1] % 32 or net.input_shape[2] % 32:
            net.close()
            raise ValueError(f"{path}: not a YuNet graph ({net!r})")
        return net

    def _net(self, size: tuple[int, int]) -> Any:
        net = self._nets.get(size)
        if net is None:
            with self._lock:
                net = self._nets.get(size)
                if net is None:
                    net = self._nets[size] = self._open(self._files[size])
        return net

    # -- detection ----------------------------------------------------------------------------

    def detect_batch(self, images: Sequence[np.ndarray], mode: str | None = None) -> list[list[YuNetBox]]:
        """YuNet's faces of each image, frame pixels, largest first (one in "largest" mode)."""
        images = [_as_rgb(im) for im in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(pick_size(self._files, *im.shape[:2]), []).append(i)
        found: list[list[YuNetBox]] = [[] for _ in images]
        for (width, height), members in groups.items():
            batch = np.zeros((len(members), 3, height, width), np.float32)
            scales = [letterbox(images[i], height, width, out=batch[k])[1] for k, i in enumerate(members)]
            out = dict(zip(OUTPUTS, self._net((width, height)).run(batch).values()))
            for k, (i, s) in enumerate(zip(members, scales)):
                found[i] = self._boxes(out, k, height, width, s, images[i].shape[:2], mode)
        return found

    def _boxes(self, out: dict[str, np.ndarray], index: int, height: int, width: int, s: float,
               shape: tuple[int, int], mode: str | None) -> list[YuNetBox]:
        boxes, scores, points = decode(out, index, height, width, min_score=self.min_score)
        h, w = shape
        faces = []
        for b, sc, p in zip(boxes / s, scores, points / s):
            if max(b[2] - b[0], b[3] - b[1]) < self.min_face:
                continue
            b = np.clip(b, 0, [w, h, w, h])
            if b[2] - b[0] < 1 or b[3] - b[1] < 1:
                continue
            faces.append(YuNetBox(box=b, score=float(sc), points=p))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces[:1] if (mode or self.mode) == "largest" else faces

    def detect(self, image: np.ndarray, mode: str | None = None) -> list[YuNetBox]:
        return self.detect_batch([image], mode)[0]

    # -- landmarks and alignment ---------------------------------------------------------------

    def _shape(self):
        shape = getattr(self._local, "shape", None)
        if shape is None:
            import dlib

            shape = self._local.shape = dlib.shape_predictor(str(self.landmark_model))
        return shape

    def landmarks(self, image: np.ndarray, box: YuNetBox) -> tuple[np.ndarray, np.ndarray]:
        """(the box the landmarks were fitted in, (K, 2) landmarks), frame pixels."""
        if self.landmark_mode == "yunet":
            return box.box, box.points.copy()
        import dlib

        mapped = dlib_box(box.box)
        x0, y0, x1, y1 = (int(round(v)) for v in mapped)
        shape = self._shape()(_as_rgb(image), dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return mapped, np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def align(self, image: np.ndarray, box: YuNetBox) -> Face:
        image = _as_rgb(image)
        fitted_in, marks = self.landmarks(image, box)
        points = marks if self.landmark_mode == "yunet" else five_points(marks)
        crop, matrix = align_crop(image, points, self.size, self.scale)
        return Face(box=fitted_in, score=box.score, landmarks=marks, points=points, crop=crop, matrix=matrix)

    def batch(self, images: Sequence[np.ndarray], mode: str | None = None) -> list[list[Face]]:
        images = [_as_rgb(im) for im in images]
        return [[self.align(im, b) for b in boxes] for im, boxes in zip(images, self.detect_batch(images, mode))]

    def __call__(self, image: np.ndarray, mode: str | None = None) -> list[Face]:
        return self.batch([image], mode)[0]

    def close(self) -> None:
        with self._lock:
            nets, self._nets = list(self._nets.values()), {}
        for net in nets:
            net.close()

    def __enter__(self) -> "YuNetDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
