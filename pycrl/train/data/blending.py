"""Blend masks from landmarks: forehead-extended hull, random deformation, soft edges.

Shared by self-blending (SBI) and the synthetic face swap. The mask is the boundary label
of a blended fake: 1 where the pasted face is fully visible, 0 where the image is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pycrl.train.data.face_template import JAW, LEFT_EYE, RIGHT_EYE

HULL_KINDS = ("extended", "face", "inner")


@dataclass(frozen=True)
class MaskConfig:
    """How blend masks vary. Lengths are fractions of the face size (inter-ocular based)."""

    hull_weights: tuple[float, float, float] = (0.5, 0.3, 0.2)  # extended, face, inner
    forehead_height: float = 0.6  # forehead top, as a fraction of eye-line-to-chin
    deform: float = 0.06  # amplitude of the smooth random warp of the hull
    grow: tuple[float, float] = (-0.08, 0.08)  # erode (<0) or dilate (>0) the hull
    blur: tuple[float, float] = (0.04, 0.12)  # Gaussian sigma of the soft edge
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # SBI's ratio choices


def face_scale(landmarks: np.ndarray) -> float:
    """A face size in pixels: twice the distance between the eye centres (about the face width)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return 2.0 * float(np.linalg.norm(lm[RIGHT_EYE].mean(0) - lm[LEFT_EYE].mean(0)))


def forehead_points(landmarks: np.ndarray, height: float = 0.6) -> np.ndarray:
    """Points over the forehead for 68-point sets (the 81-point model's extra points are unreachable).

    The jaw is mirrored about the eye line and squashed by ``height``, so the chin lands at
    the top of the forehead and the jaw ends stay at the temples.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    left, right = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0)
    mid = (left + right) / 2.0
    u = (right - left) / max(np.linalg.norm(right - left), 1e-6)
    down = np.array([-u[1], u[0]])  # perpendicular to the eye line
    if np.dot(lm[JAW][8] - mid, down) < 0:
        down = -down
    rel = lm[JAW] - mid
    along, below = rel @ u, rel @ down
    return mid + along[:, None] * u - (height * np.maximum(below, 0.0))[:, None] * down


def face_hull(landmarks: np.ndarray, kind: str = "extended", forehead_height: float = 0.6) -> np.ndarray:
    """Convex hull polygon of the face: ``extended`` (with forehead), ``face`` (68 points), ``inner``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or len(lm) < 68:
        raise ValueError(f"expected (68, 2) or (81, 2) landmarks, got shape {lm.shape}")
    if kind == "extended":
        # dlib's 81-point model already has forehead points 68..80
        pts = lm[:81] if len(lm) >= 81 else np.concatenate([lm[:68], forehead_points(lm, forehead_height)])
    elif kind == "face":
        pts = lm[:68]
    elif kind == "inner":
        pts = lm[17:68]
    else:
        raise ValueError(f"unknown hull kind {kind!r}; choose from {HULL_KINDS}")
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)


def hull_mask(shape: tuple[int, int], landmarks: np.ndarray, kind: str = "extended",
              forehead_height: float = 0.6) -> np.ndarray:
    """Binary (0/1 float32) filled hull."""
    m = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(m, np.round(face_hull(landmarks, kind, forehead_height)).astype(np.int32), 1)
    return m.astype(np.float32)


def _smooth_warp(mask: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Deform a mask by a smooth random displacement field (coarse grid, cubic upsampling)."""
    h, w = mask.shape
    g = int(rng.integers(3, 7))
    field = rng.uniform(-amplitude, amplitude, (2, g, g)).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(mask, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    if pixels == 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1,) * 2)
    return cv2.dilate(mask, k) if pixels > 0 else cv2.erode(mask, k)


def random_blend_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator,
                      config: MaskConfig = MaskConfig(), kinds: tuple[str, ...] = HULL_KINDS) -> np.ndarray:
    """A soft, randomly deformed hull mask scaled by a random blend ratio; float32 HxW in [0, 1]."""
    weights = np.array([config.hull_weights[HULL_KINDS.index(k)] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    size = face_scale(landmarks)
    mask = hull_mask(shape, landmarks, kind, config.forehead_height)
    if config.deform > 0:
        mask = (_smooth_warp(mask, config.deform * size, rng) > 0.5).astype(np.float32)
    mask = _grow(mask, int(round(rng.uniform(*config.grow) * size)))
    sigma = rng.uniform(*config.blur) * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        peak = float(mask.max())
        # re-normalise so the face centre stays fully pasted however strong the blur
        mask = np.clip(mask / peak, 0.0, 1.0) if peak > 0 else mask
        # cut the far Gaussian tail: below half a grey level it cannot change a pixel,
        # and a compact support keeps "what changed" and "where the mask is" the same set
        mask[mask < 0.5 / 255.0] = 0.0
    ratio = float(rng.choice(config.blend_ratios))
    return (mask * ratio).astype(np.float32)


def alpha_blend(background: np.ndarray, foreground: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``foreground`` over ``background`` by ``mask``; exact where the mask is 0, uint8 out."""
    m = mask.astype(np.float32)[..., None]
    out = foreground.astype(np.float32) * m + background.astype(np.float32) * (1.0 - m)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # rounding is exact for untouched pixels, but make it explicit for readers and tests
    untouched = mask <= 0
    out[untouched] = background[untouched]
    return out
