"""Decoding media into RGB uint8 frames: videos with PyAV, images with Pillow.

No torch here. Everything that reads an untrusted file is bounded by
``pycrl.limits.Limits`` and fails with a ``MediaError`` subclass naming the
file, never a crash or a hang. The GPU path (NVIDIA DALI) lives in
``pycrl.media.dali`` and is imported only on demand.
"""

from ..limits import DEFAULT_LIMITS, Limits
from . import errors
from .dali import dali_available
from .errors import *  # noqa: F403  (the typed errors, listed in errors.__all__)
from .image import load_image, media_kind
from .video import (
    Frame,
    FrameSampler,
    SamplingStats,
    VideoInfo,
    probe_video,
    sample_frames,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    *errors.__all__,
    "load_image",
    "media_kind",
    "Frame",
    "FrameSampler",
    "SamplingStats",
    "VideoInfo",
    "probe_video",
    "sample_frames",
    "dali_available",
]

