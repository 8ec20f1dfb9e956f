"""Face alignment as in DeepfakeBench preprocessing: 5 points onto the ArcFace template.

DeepfakeBench fits a least-squares similarity transform from five landmarks
to the ArcFace 112x112 template (x + 8), scaled to the output size and shrunk
by the crop scale 1.3 around the centre (a 15 % margin per side), then warps
with ``cv2.warpAffine`` to 256x256.

The five points. ArcFace's template holds eye centres, the nose tip and the
mouth corners. Where they come from depends on the landmark model:

* 68/81-point models (DeepfakeBench uses the 81-point one): exactly
  DeepfakeBench's parts 37, 44, 30, 49, 55. (Those are an upper-eyelid point
  of each eye and points next to the mouth corners, an off-by-one against
  the 1-based iBUG numbering; kept so crops match its checkpoints.)
* dlib's 5-point model (the default: licence-clean) gives two corners per
  eye and the base of the nose (subnasale), no mouth. We derive:
  eye centre = midpoint of the two corners (as ArcFace defines it); nose tip
  = subnasale moved up by ``NOSE_TIP_ABOVE_BASE`` eye-distances (measured
  with the 68-point model on scikit-image's astronaut: tip 7 px above the
  base at 43 px eye distance); mouth corners = the template's corners placed
  in the eye frame, with their depth below the eyes scaled like the nose
  depth (template ratio 2.02). So the fit follows the observed eyes (roll,
  scale, position) and the nose (face length, pitch), but not the mouth:
  an open or smiling mouth moves DeepfakeBench's crop by a few pixels and
  not ours.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "ARCFACE_112",
    "align_crop",
    "crop_template",
    "five_points",
    "similarity_lstsq",
]

#: ArcFace reference points in a 112x96 crop: left eye, right eye, nose tip,
#: left mouth corner, right mouth corner (image left/right).
ARCFACE_112 = np.array(
    [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ],
    dtype=np.float64,
)

#: Nose tip above the subnasale, in eye-centre distances (see module docstring).
NOSE_TIP_ABOVE_BASE = 0.16

# DeepfakeBench's picks from the 68/81-point layouts (0-based dlib part numbers).
_DFB_PARTS = (37, 44, 30, 49, 55)


def crop_template(size: int = 256, scale: float = 1.3) -> np.ndarray:
    """Where the five points land in a ``size`` x ``size`` crop with margin ``scale``."""
    points = ARCFACE_112.copy()
    points[:, 0] += 8.0  # centre the 112x96 template in a 112x112 square
    points *= size / 112.0
    margin = size * (scale - 1.0) / 2.0
    return (points + margin) * size / (size + 2.0 * margin)


def _eye_frame(left_eye: np.ndarray, right_eye: np.ndarray):
    """Origin between the eyes, unit vectors along the eye line and down the face, eye distance."""
    along = right_eye - left_eye
    dist = float(np.hypot(*along))
    ex = along / dist
    ey = np.array([-ex[1], ex[0]])  # +90 degrees in image coordinates (y down): points chin-ward
    return (left_eye + right_eye) / 2.0, ex, ey, dist


def _template_in_eye_frame() -> np.ndarray:
    origin, ex, ey, dist = _eye_frame(ARCFACE_112[0], ARCFACE_112[1])
    rel = ARCFACE_112 - origin
    return np.stack([rel @ ex, rel @ ey], axis=1) / dist


_TEMPLATE_FRAME = _template_in_eye_frame()


def _from_dlib5(parts: np.ndarray) -> np.ndarray:
    # dlib 5-point order: 0,1 = corners of the image-right eye, 2,3 = image-left eye, 4 = subnasale.
    left_eye, right_eye = parts[2:4].mean(axis=0), parts[0:2].mean(axis=0)
    origin, ex, ey, dist = _eye_frame(left_eye, right_eye)
    base = parts[4] - origin
    nose = np.array([base @ ex / dist, base @ ey / dist - NOSE_TIP_ABOVE_BASE])
    depth = nose[1] / _TEMPLATE_FRAME[2, 1]  # face length relative to the template
    frame = np.array(
        [
            [-0.5, 0.0],
            [0.5, 0.0],
            nose,
            [_TEMPLATE_FRAME[3, 0], _TEMPLATE_FRAME[3, 1] * depth],
            [_TEMPLATE_FRAME[4, 0], _TEMPLATE_FRAME[4, 1] * depth],
        ]
    )
    return origin + dist * (frame[:, :1] * ex + frame[:, 1:] * ey)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """ArcFace-ordered (5, 2) points from a 5-, 68- or 81-point dlib landmark set."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape == (5, 2):
        return _from_dlib5(landmarks)
    if landmarks.ndim == 2 and landmarks.shape[1] == 2 and landmarks.shape[0] in (68, 81):
        return landmarks[list(_DFB_PARTS)].copy()
    raise ValueError(f"expected 5, 68 or 81 (x, y) landmarks, got shape {landmarks.shape}")


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, shift) minimising the squared error onto ``dst``.

    With ``[a, -b; b, a]`` for scale x rotation the problem is linear in
    (a, b, tx, ty), so ordinary least squares gives the exact optimum
    (the same transform as skimage's ``SimilarityTransform.estimate``).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = len(src)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def align_crop(image: np.ndarray, points: np.ndarray, size: int = 256, scale: float = 1.3):
    """Warp ``image`` so ArcFace-ordered ``points`` meet the crop template.

    Returns ``(crop, matrix)``; ``matrix`` (2x3) maps image to crop pixels.
    """
    matrix = similarity_lstsq(points, crop_template(size, scale))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, matrix
