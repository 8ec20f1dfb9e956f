"""Safety limits for untrusted media.

Uploaded files are hostile until proven otherwise: a 40-byte PNG can declare
10 billion pixels, a tiny MP4 can declare hours of video. Every decoder in
pycrl.media checks these limits *before* allocating or decoding, and again
while decoding, and raises ``pycrl.media.MediaLimitError`` (or its subclass
``MediaTimeoutError``) instead of exhausting memory or time.

Media is read as a local file only: no URL protocol ever parses an input's
name, and only the FFmpeg demuxers in ``Limits.allowed_demuxers`` may parse
its bytes (``PLAIN_DEMUXERS`` by default: container formats that never open
another file or a network address).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS", "PLAIN_DEMUXERS"]

#: FFmpeg demuxers (short names, as in ``av.formats_available``) that read
#: nothing but the bytes they are given. A demuxer whose FFmpeg name lists
#: several ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm") matches on any of them.
#: Left out on purpose, because they open other files or the network named
#: inside the input (or in its file name): hls, dash/webm_dash_manifest,
#: concat, sdp, rtp, rtsp, image2 (numbered file sequences), lavfi (filter
#: graphs can read files), capture devices; and still-image demuxers
#: (``*_pipe``): images go to ``load_image``.
PLAIN_DEMUXERS: tuple[str, ...] = (
    # containers
    "mov", "mp4", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "asf", "ogg", "nut", "ivf",
    # raw video elementary streams
    "h264", "hevc", "mpegvideo", "m4v", "mjpeg", "vc1", "av1", "obu", "yuv4mpegpipe",
    # animations read as video
    "gif", "apng",
    # audio-only files: read, then refused as having no video stream
    "wav", "mp3", "aac", "flac",
)

_DEMUXER_NAME = re.compile(r"[a-z0-9_]+")  # no comma: FFmpeg's list separator


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
    #: from the key frame before each target (or straight through when it cannot
    #: seek exactly), so this bounds the work per video (an hour at 30 fps when
    #: decoding straight through); keyframes mode decodes at most N frames.
    max_decoded_frames: int = 120_000
    #: Wall-clock budget for decoding one item: checked on every read of the
    #: input and between packets, and given to FFmpeg as its open/read timeout.
    timeout_s: float = 300.0
    #: FFmpeg demuxers allowed to parse a video (see ``PLAIN_DEMUXERS``).
    #: Widening it never lets a demuxer open another file or URL: nested
    #: opens are refused whatever this says.
    allowed_demuxers: tuple[str, ...] = PLAIN_DEMUXERS

    def __post_init__(self) -> None:
        names = self.allowed_demuxers
        if not isinstance(names, (tuple, list, set, frozenset)) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"Limits.allowed_demuxers must be a sequence of names, got {names!r}")
        if not names or not all(_DEMUXER_NAME.fullmatch(n) for n in names):
            raise ValueError(f"Limits.allowed_demuxers must be FFmpeg demuxer names like 'mov', got {names!r}")
        object.__setattr__(self, "allowed_demuxers", tuple(names))  # a list from JSON stays hashable
        for field in dataclasses.fields(self):
            if field.name == "allowed_demuxers":
                continue
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Limits.{field.name} must be a number, got {value!r}")
            if not value > 0 or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")

    def replace(self, **changes) -> "Limits":
        """A copy with some fields changed, e.g. ``DEFAULT_LIMITS.replace(timeout_s=10)``."""
        return dataclasses.replace(self, **changes)


DEFAULT_LIMITS = Limits()
