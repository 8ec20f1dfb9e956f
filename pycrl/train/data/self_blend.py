"""Self-blended fakes (after SBI, Shiohara & Yamasaki, CVPR 2022), written from the paper's recipe.

A real face is copied, the copy is jittered in colour, frequency and geometry, and pasted
back onto the untouched original inside a soft, randomly deformed landmark hull with a
random blend ratio. The result has the blending boundary and the statistical mismatch
of a face swap without any second identity, and the mask is a free boundary label.

Only the pasted copy is jittered, so pixels where the mask is 0 are exactly the original:
the mask says precisely what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pycrl.train.data.blending import MaskConfig, alpha_blend, random_blend_mask


@dataclass(frozen=True)
class SelfBlendConfig:
    """Ranges of the source jitter (SBI-like defaults) and of the blend mask."""

    rgb_shift: float = 20.0  # per-channel offset, grey levels
    hue_shift: float = 10.0  # OpenCV hue units (0..180)
    sat_shift: float = 30.0
    brightness: float = 0.1  # additive, fraction of 255
    contrast: float = 0.1  # multiplicative around the mean
    colour_prob: float = 1.0
    sharpen_prob: float = 0.35  # otherwise blur or downscale, see below
    blur_prob: float = 0.35
    downscale_prob: float = 0.2
    scale: tuple[float, float] = (0.95, 1.05)  # per-axis resize of the pasted copy
    shift: float = 0.03  # translation, fraction of the image size
    mask: MaskConfig = field(default_factory=MaskConfig)


def _jitter_colour(img: np.ndarray, rng: np.random.Generator, c: SelfBlendConfig) -> np.ndarray:
    out = img.astype(np.float32) + rng.uniform(-c.rgb_shift, c.rgb_shift, 3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-c.hue_shift, c.hue_shift)) % 180.0
    hsv[..., 1] = np.clip(hsv[..., 1] + rng.uniform(-c.sat_shift, c.sat_shift), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    alpha = 1.0 + rng.uniform(-c.contrast, c.contrast)
    beta = rng.uniform(-c.brightness, c.brightness) * 255.0
    return np.clip((out - out.mean()) * alpha + out.mean() + beta, 0, 255).astype(np.uint8)


def _jitter_frequency(img: np.ndarray, rng: np.random.Generator, c: SelfBlendConfig) -> np.ndarray:
    r = rng.random()
    if r < c.sharpen_prob:
        soft = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 1.6)).astype(np.float32)
        return np.clip(img + rng.uniform(0.3, 1.0) * (img - soft), 0, 255).astype(np.uint8)
    r -= c.sharpen_prob
    if r < c.blur_prob:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    r -= c.blur_prob
    if r < c.downscale_prob:
        h, w = img.shape[:2]
        f = rng.uniform(0.5, 0.85)
        small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def _jitter_geometry(img: np.ndarray, centre: np.ndarray, rng: np.random.Generator,
                     c: SelfBlendConfig) -> np.ndarray:
    h, w = img.shape[:2]
    sx, sy = rng.uniform(*c.scale, size=2)
    tx, ty = rng.uniform(-c.shift, c.shift, 2) * np.array([w, h])
    m = np.array([[sx, 0.0, (1 - sx) * centre[0] + tx], [0.0, sy, (1 - sy) * centre[1] + ty]])
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def self_blend(image: np.ndarray, landmarks: np.ndarray | None = None, rng: np.random.Generator | None = None,
               config: SelfBlendConfig = SelfBlendConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Make a self-blended fake from an aligned RGB uint8 face crop.

    ``landmarks``: (68, 2) or (81, 2) in pixel coordinates of ``image``; None uses the
    default template for aligned crops. Returns (fake uint8 HxWx3, mask float32 HxW in [0, 1]).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    rng = np.random.default_rng() if rng is None else rng
    h, w = image.shape[:2]
    if landmarks is None:
        from pycrl.train.data.face_template import default_landmarks

        landmarks = default_landmarks(h, w)
    lm = np.asarray(landmarks, dtype=np.float64)
    source = image
    if rng.random() < config.colour_prob:
        source = _jitter_colour(source, rng, config)
    source = _jitter_frequency(source, rng, config)
    source = _jitter_geometry(source, lm[:68].mean(0), rng, config)
    mask = random_blend_mask((h, w), lm, rng, config.mask)
    return alpha_blend(image, source, mask), mask
