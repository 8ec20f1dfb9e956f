"""Still images through Pillow, to RGB uint8 HWC, with bomb protection.

Conversions (each chosen so one upload always gives one well-defined picture):

* EXIF orientation is applied (phones store portraits sideways).
* Alpha is **composited on black** (RGB x alpha), so hidden pixels under full
  transparency never reach the model. DeepfakeBench's ``cv2.imread`` drops
  alpha instead; the two differ only where alpha < 255.
* Grey, bilevel, palette (with or without transparency), CMYK, YCbCr, LAB and
  HSV go through Pillow's converters (CMYK without ICC colour management).
* 16-bit samples keep their high byte, as Pillow does for 16-bit RGB PNGs.
* Animated GIF / APNG / WebP and multi-page TIFF: the **first frame** only.
  Give animations to ``sample_frames`` to read them as video.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..limits import DEFAULT_LIMITS, Limits
from ._source import as_file, is_path, open_local
from .errors import CorruptMediaError, MediaLimitError, UnsupportedMediaError

__all__ = ["load_image", "media_kind"]

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# What Pillow's plugins raise on malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError)


def load_image(source, limits: Limits | None = None) -> np.ndarray:
    """Decode a path, bytes or array into an RGB uint8 array of shape (H, W, 3).

    Arrays are taken as RGB (not OpenCV's BGR): (H, W), (H, W, 1), (H, W, 3)
    or (H, W, 4); uint8, uint16 (high byte), bool, or float in [0, 1]. A
    contiguous RGB uint8 array is returned as it is, not copied.
    """
    limits = limits or DEFAULT_LIMITS
    if isinstance(source, np.ndarray):
        return _from_array(source, source, limits)
    if isinstance(source, Image.Image):
        return _from_pil(source, source, limits)
    if is_path(source):
        with open_local(source) as fh:  # absolute path, regular file, read through this descriptor
            _check_bytes(source, os.fstat(fh.fileno()).st_size, limits)
            return _decode(fh, source, limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise CorruptMediaError(source, "empty input (0 bytes)")
        _check_bytes(source, len(source), limits)
        return _decode(io.BytesIO(source), source, limits)
    raise TypeError(f"load_image takes a path, bytes or a numpy array, not {type(source).__name__}")


def _check_bytes(source, size: int, limits: Limits) -> None:
    if size > limits.max_image_bytes:
        raise MediaLimitError(source, f"{size} bytes exceeds Limits.max_image_bytes={limits.max_image_bytes}")


def _decode(fh, source, limits: Limits) -> np.ndarray:
    with _open(fh, source) as img:
        return _from_pil(img, source, limits)


def media_kind(source) -> str:
    """``"image"`` when Pillow recognises the file (header only), else ``"video"``.

    Lets callers route uploads by content rather than by file extension.
    """
    with as_file(source) as fh:  # a path: opened locally, as load_image does
        try:
            with Image.open(fh):
                return "image"
        except Image.DecompressionBombError:
            return "image"
        except (UnidentifiedImageError, *_DECODE_ERRORS):
            return "video"


def _open(fh, source) -> Image.Image:
    # Image.open reads only the header. Pillow's own bomb check runs here too
    # (a warning above 89.5 M pixels, an error above twice that); our
    # max_pixels check follows before any pixel is decoded.
    try:
        return Image.open(fh)
    except Image.DecompressionBombError as exc:
        raise MediaLimitError(source, f"decompression bomb refused by Pillow ({exc})") from None
    except UnidentifiedImageError:
        raise UnsupportedMediaError(source, "not an image format Pillow recognises") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMediaError(source, f"unreadable image header ({exc})") from None


def _from_pil(img: Image.Image, source, limits: Limits) -> np.ndarray:
    w, h = img.size
    if w * h > limits.max_pixels:
        raise MediaLimitError(
            source, f"image size {w}x{h} = {w * h} pixels exceeds Limits.max_pixels={limits.max_pixels}"
        )
    if w == 0 or h == 0:
        raise CorruptMediaError(source, f"image has no pixels ({w}x{h})")
    try:
        img.seek(0)  # animations and multi-page files: the first frame
        img.load()
        img = _upright(img)
        return _to_rgb(img)
    except MemoryError:
        raise MediaLimitError(source, "out of memory while decoding") from None
    except _DECODE_ERRORS as exc:
        raise CorruptMediaError(source, f"cannot decode image ({exc})") from None


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        return img  # a damaged EXIF block should not lose the picture


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("RGB", "L") and "transparency" not in img.info:
        arr = np.asarray(img)
    elif mode.startswith("I;16") or mode == "I":
        arr = (np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
    elif mode == "F":
        arr = _float_to_uint8(np.asarray(img))
    elif mode == "1":
        arr = np.asarray(img.convert("L"))
    elif mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info):
        return _composite_on_black(np.asarray(img.convert("RGBA")))
    else:  # P, CMYK, YCbCr, LAB, HSV, RGBX
        arr = np.asarray(img.convert("RGB"))
    return _as_rgb_array(arr)


def _from_array(arr: np.ndarray, source, limits: Limits) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        h, w = arr.shape[:2]
    elif arr.ndim == 2:
        h, w = arr.shape
    else:
        raise UnsupportedMediaError(source, f"array shape {arr.shape} is not (H, W) or (H, W, 1|3|4)")
    if h * w > limits.max_pixels:
        raise MediaLimitError(source, f"array of {h * w} pixels exceeds Limits.max_pixels={limits.max_pixels}")
    if h == 0 or w == 0:
        raise CorruptMediaError(source, f"array has no pixels {arr.shape}")
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = _float_to_uint8(arr)
    else:
        raise UnsupportedMediaError(source, f"array dtype {arr.dtype} (use uint8, uint16, bool or float)")
    if arr.ndim == 3 and arr.shape[2] == 4:
        return _composite_on_black(arr)
    return _as_rgb_array(arr)


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    # Floats are taken as [0, 1]; NaN becomes 0.
    scaled = np.nan_to_num(arr.astype(np.float32), nan=0.0) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite_on_black(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.uint16)
    return ((rgba[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)


def _as_rgb_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr, dtype=np.uint8)
