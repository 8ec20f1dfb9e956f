"""Frame I/O and the tensor a model sees: RGB uint8 in, normalised float CHW out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pycrl.train.data.errors import FrameReadError, MissingFramesError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def read_rgb(path: str | Path) -> np.ndarray:
    """RGB uint8 HxWx3 of an image file (cv2 decodes, as DeepfakeBench's loader does)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        if not Path(path).is_file():
            raise MissingFramesError(f"frame not found: {path}")
        raise FrameReadError(f"could not decode image: {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Float32 HxW mask in [0, 1] at ``shape``; zeros when the file does not exist (real frames)."""
    if not Path(path).is_file():
        return np.zeros(shape, dtype=np.float32)
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise FrameReadError(f"could not decode mask: {path}")
    if m.shape != tuple(shape):
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return m.astype(np.float32) / 255.0


def resize_square(img: np.ndarray, resolution: int) -> np.ndarray:
    """Resize to ``resolution`` x ``resolution`` with bicubic interpolation, as DeepfakeBench does."""
    if img.shape[0] == resolution and img.shape[1] == resolution:
        return img
    return cv2.resize(img, (resolution, resolution), interpolation=cv2.INTER_CUBIC)


def to_tensor(img: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """uint8 HxWx3 -> float32 tensor 3xHxW, ``(x / 255 - mean) / std``."""
    import torch

    x: np.ndarray = img.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
