"""Safety limits for untrusted media.

Uploaded files are hostile until proven otherwise: a 40-byte PNG can declare
10 billion pixels, a tiny MP4 can declare hours of video. Every decoder in
pycrl.media checks these limits *before* allocating or decoding, and again
while decoding, and raises ``pycrl.media.MediaLimitError`` (or its subclass
``MediaTimeoutError``) instead of exhausting memory or time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class Limits:
    """Bounds applied to one media item (one image or one video).

    The defaults admit any ordinary upload (8K frames, a few hours of video)
    while bounding the worst case to roughly 120 MB per RGB frame.
    """

    #: Pixels per image or video frame (width x height). 40 M admits 8K UHD
    #: (33.2 M) and sits below Pillow's own bomb limit (89.5 M pixels).
    max_pixels: int = 40_000_000
    #: Size of an image file (or bytes object) in bytes.
    max_image_bytes: int = 64 * 1024 * 1024
    #: Declared or decoded duration of a video in seconds (4 hours).
    max_video_seconds: float = 4 * 3600.0
    #: Frames one video may make the decoder produce. Uniform sampling decodes
    #: every frame up to the last one kept, so this bounds the work per video
    #: (about an hour at 30 fps); keyframes mode decodes at most N frames.
    max_decoded_frames: int = 120_000
    #: Wall-clock budget for decoding one item, checked between packets.
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Limits.{field.name} must be a number, got {value!r}")
            if not value > 0 or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")

    def replace(self, **changes) -> "Limits":
        """A copy with some fields changed, e.g. ``DEFAULT_LIMITS.replace(timeout_s=10)``."""
        return dataclasses.replace(self, **changes)


DEFAULT_LIMITS = Limits()
