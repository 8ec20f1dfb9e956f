"""Opening a video with PyAV and checking it against the limits before decoding.

What FFmpeg may do with an input is fenced in at the open, not after it:

* it reads a Python file object over the local file (or the bytes), never a
  name: no protocol (tcp:, http:, file:, concat:, ...) ever parses a path;
* ``format_whitelist``: only ``Limits.allowed_demuxers`` may parse it, so
  playlists (HLS, DASH), concat scripts, SDP and image sequences are
  refused whatever their file name says;
* ``protocol_whitelist`` matching no protocol: a demuxer that tries to open
  another file or address (a nested open) fails;
* the decode budget bounds the open and every read (FFmpeg's interrupt
  callback and the reader), and ``max_pixels`` is given to the decoders
  FFmpeg runs while probing the streams, so no frame larger than
  ``Limits.max_pixels`` is allocated before the header check. (PyAV passes
  those options only for formats that list their streams in the header;
  MPEG-PS and FLV create streams while probing, and there FFmpeg's own
  size cap of about 268 M pixels is what bounds the probing decode.)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
from dataclasses import dataclass
from functools import lru_cache

import av

from ..limits import Limits
from ._source import (
    BudgetedReader,
    Deadline,
    is_path,
    looks_like_video,
    neutral_name,
    open_local,
)
from .errors import (
    CorruptMediaError,
    MediaLimitError,
    NoVideoStreamError,
    UnsupportedMediaError,
)

# FFmpeg demuxers that read a single still image. A still image opened as a
# "video" would skip EXIF orientation and the image limits, so refuse it.
_STILL_IMAGE_DEMUXERS = ("image2",)

# Matches no protocol, so any open a demuxer attempts besides the input fails.
_NO_PROTOCOL = "none"
# Matches no decoder: a header-only open (see _declared_size).
_NO_CODEC = "none"
# Python-side read size: FFmpeg reads through PyAV's callback in chunks this big.
_BUFFER_SIZE = 256 * 1024


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares about its first video stream."""

    width: int  #: display width, after rotation
    height: int  #: display height, after rotation
    rotation: int  #: degrees counter-clockwise applied to decoded frames (0/90/180/270)
    frame_count: int | None  #: frames declared by the container; None when unknown
    duration: float | None  #: seconds; None when unknown
    rate: float | None  #: average frames per second; None when unknown
    codec: str
    pixel_format: str
    container: str


def _video_stream(container, source):
    # Cover art in audio files is a one-picture "video" stream: not a video.
    pictures = int(av.stream.Disposition.attached_pic)
    streams = [s for s in container.streams.video if not int(s.disposition) & pictures]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        if not {"audio", "subtitle"} & set(kinds):  # a header cut short lists nothing usable
            raise CorruptMediaError(
                source, f"no media streams could be read (found: {', '.join(kinds) or 'none'}); truncated?"
            )
        raise NoVideoStreamError(source, f"no video stream (streams: {', '.join(kinds)})")
    return streams[0]


def _open_error(source, exc: Exception, head: bytes, limits: Limits) -> Exception:
    detail = getattr(exc, "strerror", None) or str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.EINVAL:  # how FFmpeg refuses a format off format_whitelist
        demuxer = probe_demuxer(head, neutral_name(source))
        if demuxer is None:
            return UnsupportedMediaError(source, f"not a format in Limits.allowed_demuxers ({detail})")
        if not _allowed(demuxer, limits):
            return _refusal(source, demuxer)
    if code == errno.EPERM:  # how FFmpeg refuses a protocol off protocol_whitelist
        demuxer = probe_demuxer(head, neutral_name(source)) or "the"
        return UnsupportedMediaError(
            source, f"{demuxer} demuxer tried to open another file or address named in the input: refused"
        )
    family = looks_like_video(head)
    if family:
        return CorruptMediaError(source, f"looks like {family} but FFmpeg cannot read it ({detail})")
    return UnsupportedMediaError(source, f"not a video format FFmpeg recognises ({detail})")


def _allowed(demuxer: str, limits: Limits) -> bool:
    return bool(set(demuxer.split(",")) & set(limits.allowed_demuxers))


def _refusal(source, demuxer: str) -> UnsupportedMediaError:
    if demuxer in _STILL_IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        return UnsupportedMediaError(source, f"a still image ({demuxer}), not a video: use load_image")
    return UnsupportedMediaError(
        source,
        f"FFmpeg demuxer {demuxer!r} is not in Limits.allowed_demuxers, the plain container formats "
        "pycrl reads (playlists, concat scripts and the like make FFmpeg open other files or the network)",
    )


class _ProbeData(ctypes.Structure):
    _fields_ = [
        ("filename", ctypes.c_char_p),
        ("buf", ctypes.POINTER(ctypes.c_ubyte)),
        ("buf_size", ctypes.c_int),
        ("mime_type", ctypes.c_char_p),
    ]


@lru_cache(maxsize=1)
def _probe_function():
    """``av_probe_input_format3`` of the libavformat PyAV loaded, or None."""
    candidates = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            candidates += [line.split()[-1] for line in maps if "libavformat" in line]
    except OSError:
        pass
    try:
        fn = None
        for path in dict.fromkeys(candidates):
            if os.path.isfile(path):
                fn = ctypes.CDLL(path).av_probe_input_format3
                break
        if fn is None:
            return None
        fn.restype = ctypes.POINTER(ctypes.c_char_p)  # AVInputFormat starts with its name
        fn.argtypes = [ctypes.POINTER(_ProbeData), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        return fn
    except (OSError, AttributeError):
        return None


def probe_demuxer(head: bytes, name: str) -> str | None:
    """The demuxer FFmpeg's probe picks for ``head`` (FFmpeg's own probe, no I/O), or None.

    Only to name a refused format in the error: ``format_whitelist`` is what
    enforces ``Limits.allowed_demuxers``. Probes growing prefixes as FFmpeg does.
    """
    probe = _probe_function()
    if probe is None or not head:
        return None
    size, best = 2048, None
    while True:
        chunk = head[:size]
        buf = (ctypes.c_ubyte * (len(chunk) + 64)).from_buffer_copy(chunk + bytes(64))  # zero padding
        data = _ProbeData(name.encode(), buf, len(chunk), None)
        score = ctypes.c_int(0)
        found = probe(ctypes.byref(data), 1, ctypes.byref(score))
        if found and found[0]:
            best = found[0].decode("ascii", "replace")
            if score.value > 25:  # AVPROBE_SCORE_RETRY: FFmpeg stops probing here too
                return best
        if size >= len(head):
            return best
        size *= 2


def _declared_size(source, index: int, limits: Limits, deadline: Deadline) -> tuple[int, int]:
    """Frame size the demuxer read from the header, with every decoder barred (nothing decoded)."""
    raw = open_local(source) if is_path(source) else io.BytesIO(source)
    options = {**_container_options(limits), "codec_whitelist": _NO_CODEC}  # FFmpeg probes with no decoder
    try:
        with contextlib.closing(raw), av.open(
            BudgetedReader(raw, deadline, neutral_name(source)),
            mode="r", metadata_errors="ignore", container_options=options,
            timeout=max(deadline.remaining, 1e-3), buffer_size=_BUFFER_SIZE,
        ) as container:
            if index < len(container.streams):
                par = container.streams[index].codec_context
                if par is not None:
                    return par.width, par.height
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        pass
    return 0, 0


def _container_options(limits: Limits) -> dict:
    return {
        "format_whitelist": ",".join(limits.allowed_demuxers),
        "protocol_whitelist": _NO_PROTOCOL,
        "enable_drefs": "0",  # MOV data references name other files (FFmpeg's default; stated here)
    }


def stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def declared_rotation(stream) -> int:
    """Rotation from the legacy ``rotate`` tag (clockwise), as counter-clockwise degrees.

    Current FFmpeg moves the display matrix onto decoded frames
    (``VideoFrame.rotation``), which is what sampling uses; this is the
    fallback for ``VideoInfo`` before decoding and for older PyAV.
    """
    try:
        return int(-float(stream.metadata.get("rotate", 0))) % 360
    except (TypeError, ValueError):
        return 0


def check_geometry(source, width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise MediaLimitError(
            source,
            f"frame size {width}x{height} = {width * height} pixels exceeds "
            f"Limits.max_pixels={limits.max_pixels}",
        )


@contextlib.contextmanager
def open_video(source, limits: Limits, deadline: Deadline | None = None):
    """Yield ``(container, stream)`` for the first real video stream, checked against limits.

    Nothing is decoded here by pycrl; the frame size declared by the stream is
    checked before the caller decodes anything.
    """
    if deadline is None:
        deadline = Deadline(source, limits)
    if is_path(source):
        raw = open_local(source)
    elif not isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError(f"a video is a path or bytes, not {type(source).__name__}")
    elif len(source) == 0:
        raise CorruptMediaError(source, "empty input (0 bytes)")
    else:
        raw = io.BytesIO(source)
    with contextlib.closing(raw):
        reader = BudgetedReader(raw, deadline, neutral_name(source))
        deadline.check()
        budget = max(deadline.remaining, 1e-3)
        try:
            container = av.open(
                reader,
                mode="r",
                metadata_errors="ignore",
                container_options=_container_options(limits),
                # given to the decoders avformat_find_stream_info runs
                options={"max_pixels": str(limits.max_pixels)},
                timeout=(budget, budget),  # FFmpeg's interrupt callback: open, then each read
                buffer_size=_BUFFER_SIZE,
            )
        except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
            deadline.check()  # a read cut short by the budget looks like a broken file
            raw.seek(0)
            raise _open_error(source, exc, raw.read(1 << 20), limits) from None
        with container:
            deadline.check()
            name = container.format.name
            if not _allowed(name, limits) or name in _STILL_IMAGE_DEMUXERS or name.endswith("_pipe"):
                raise _refusal(source, name)
            stream = _video_stream(container, source)
            try:
                ctx = stream.codec_context
            except av.FFmpegError as exc:
                raise UnsupportedMediaError(source, f"no decoder for this video ({exc})") from None
            if ctx is None:
                raise UnsupportedMediaError(source, "no decoder for this video stream")
            width, height = ctx.width, ctx.height
            if not (width and height):
                # FFmpeg's probing decoder refused the frame size (max_pixels) or could not
                # read it, and blanked the size: take what the container header declares.
                width, height = _declared_size(source, stream.index, limits, deadline)
                deadline.check()
            check_geometry(source, width, height, limits)
            duration = stream_duration(container, stream)
            if duration is not None and duration > limits.max_video_seconds:
                raise MediaLimitError(
                    source,
                    f"duration {duration:.1f} s exceeds Limits.max_video_seconds={limits.max_video_seconds:g}",
                )
            # the decoder refuses frames over the limit too (a stream can change size mid-way)
            ctx.options = {**(ctx.options or {}), "max_pixels": str(limits.max_pixels)}
            yield container, stream


def video_info(container, stream) -> VideoInfo:
    ctx = stream.codec_context
    rotation = declared_rotation(stream)
    w, h = (ctx.height, ctx.width) if rotation in (90, 270) else (ctx.width, ctx.height)
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        width=w,
        height=h,
        rotation=rotation,
        frame_count=stream.frames or None,
        duration=stream_duration(container, stream),
        rate=float(rate) if rate else None,
        codec=ctx.name,
        pixel_format=ctx.pix_fmt or "unknown",
        container=container.format.name,
    )
