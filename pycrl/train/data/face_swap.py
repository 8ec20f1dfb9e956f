"""A landmark-driven face swap for synthetic fakes (a stand-in for FF++-style manipulations).

The source face is aligned onto the target by a similarity transform fitted on the
inner landmarks, colour-matched inside the mask, and blended with a soft hull mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from pycrl.train.data.blending import MaskConfig, alpha_blend, random_blend_mask


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` onto ``dst`` (Umeyama); 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sig) @ fix) / max(s.var(0).sum(), 1e-12))
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def _match_colour(src: np.ndarray, ref: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per-channel mean/std transfer from ``ref`` to ``src`` measured inside ``region``."""
    if region.sum() < 16:
        return src
    s = src.astype(np.float32)
    out = np.empty_like(s)
    for ch in range(3):
        a, b = s[..., ch][region], ref[..., ch][region].astype(np.float32)
        out[..., ch] = (s[..., ch] - a.mean()) * (b.std() / max(a.std(), 1e-3)) + b.mean()
    return np.clip(out, 0, 255).astype(np.uint8)


def swap_face(target: np.ndarray, target_landmarks: np.ndarray, source: np.ndarray,
              source_landmarks: np.ndarray, rng: np.random.Generator,
              mask_config: MaskConfig = MaskConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Paste the face of ``source`` onto ``target``; returns (fake uint8, mask float32 in [0, 1])."""
    h, w = target.shape[:2]
    tl = np.asarray(target_landmarks, dtype=np.float64)
    m = similarity_transform(np.asarray(source_landmarks)[17:68], tl[17:68])
    warped = cv2.warpAffine(source, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    # swaps replace the inner face, not the forehead and hair
    mask = random_blend_mask((h, w), tl, rng, mask_config, kinds=("face", "inner"))
    warped = _match_colour(warped, target, mask > 0.5)
    return alpha_blend(target, warped, mask), mask
