"""Opening a video with PyAV and checking it against the limits before decoding."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import av

from ..limits import Limits
from ._source import as_file, check_file, is_path, looks_like_video, read_head
from .errors import (
    CorruptMediaError,
    MediaLimitError,
    NoVideoStreamError,
    UnsupportedMediaError,
)

# FFmpeg demuxers that read a single still image. A still image opened as a
# "video" would skip EXIF orientation and the image limits, so refuse it.
_STILL_IMAGE_DEMUXERS = ("image2",)


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


def _open_error(source, exc: Exception) -> Exception:
    family = looks_like_video(read_head(source))
    detail = getattr(exc, "strerror", None) or str(exc)
    if family:
        return CorruptMediaError(source, f"looks like {family} but FFmpeg cannot read it ({detail})")
    return UnsupportedMediaError(source, f"not a video format FFmpeg recognises ({detail})")


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
def open_video(source, limits: Limits):
    """Yield ``(container, stream)`` for the first real video stream, checked against limits."""
    if is_path(source):
        check_file(source)
    elif not isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError(f"a video is a path or bytes, not {type(source).__name__}")
    elif len(source) == 0:
        raise CorruptMediaError(source, "empty input (0 bytes)")
    try:
        container = av.open(as_file(source), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise _open_error(source, exc) from None
    with container:
        if container.format.name in _STILL_IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise UnsupportedMediaError(
                source, f"a still image ({container.format.name}), not a video: use load_image"
            )
        stream = _video_stream(container, source)
        try:
            ctx = stream.codec_context
        except av.FFmpegError as exc:
            raise UnsupportedMediaError(source, f"no decoder for this video ({exc})") from None
        if ctx is None:
            raise UnsupportedMediaError(source, "no decoder for this video stream")
        check_geometry(source, ctx.width, ctx.height, limits)
        duration = stream_duration(container, stream)
        if duration is not None and duration > limits.max_video_seconds:
            raise MediaLimitError(
                source,
                f"duration {duration:.1f} s exceeds Limits.max_video_seconds={limits.max_video_seconds:g}",
            )
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
