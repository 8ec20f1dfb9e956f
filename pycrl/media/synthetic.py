"""Small synthetic clips for tests, benchmarks and demos (PyAV encoders only).

Each frame of :func:`index_frame` carries its own index as two grey levels
that survive lossy coding, plus a white band at the top that shows which way
is up, so a test can check *which* frame came back and in which orientation.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable, Sequence

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

__all__ = ["index_frame", "pick_codec", "read_index", "write_audio", "write_video"]

# grey level = _BASE + _STEP * digit, two base-_RADIX digits: indices 0..399.
# Steps of 12 levels survive 8/10-bit YUV round trips and lossy coding.
_STEP, _BASE, _RADIX = 12, 16, 20


def index_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """RGB frame encoding ``index`` (0 <= index < 400)."""
    img = np.empty((height, width, 3), np.uint8)
    top = max(1, height // 4)
    img[:top] = 255
    if not 0 <= index < _RADIX**2:
        raise ValueError(f"index must be in [0, {_RADIX ** 2}), got {index}")
    img[top:, : width // 2] = _BASE + _STEP * (index % _RADIX)
    img[top:, width // 2 :] = _BASE + _STEP * (index // _RADIX)
    return img


def read_index(image: np.ndarray) -> int:
    """Inverse of :func:`index_frame` on a decoded (possibly lossy) frame; ValueError if not upright."""
    h, w = image.shape[:2]
    top, m = max(1, h // 4), max(1, min(h, w) // 16)  # stay clear of edges blurred by coding
    if image[: max(1, top - m)].mean() < 200:
        raise ValueError("frame is not upright (no white band at the top)")
    low = image[top + m : h - m, m : w // 2 - m].mean()
    high = image[top + m : h - m, w // 2 + m : w - m].mean()
    return int(round((low - _BASE) / _STEP)) + _RADIX * int(round((high - _BASE) / _STEP))


def pick_codec(preferred: Sequence[str] = ("libx264", "h264", "mpeg4")) -> str:
    """The first encoder this PyAV build has (H.264 if available, else MPEG-4 Part 2)."""
    for name in preferred:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise RuntimeError(f"none of the encoders {list(preferred)} is available in this PyAV build")


def write_video(
    path: str | os.PathLike,
    frames: int | Iterable[np.ndarray] = 30,
    *,
    width: int = 64,
    height: int = 48,
    rate: int = 25,
    codec: str | None = None,
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    rotation: int | None = None,
    durations_ms: Sequence[int] | None = None,
    options: dict | None = None,
    first_pts: int | None = None,
    container_format: str | None = None,
    container_options: dict | None = None,
) -> str:
    """Encode a clip; ``frames`` is a count (index frames) or RGB arrays.

    ``rotation`` stores a display rotation (degrees counter-clockwise) in the
    container; ``durations_ms`` gives each frame its own duration (variable
    frame rate, millisecond timestamps); ``first_pts`` numbers the frames from
    there in ticks of 1/``rate`` (may be negative); ``options`` are the codec's
    (``{"bf": "2"}``: B-frames), ``container_options`` the muxer's.
    """
    if isinstance(frames, int):  # index frames, counting past 399 modulo 400
        frames = (index_frame(i % _RADIX**2, width, height) for i in range(frames))
    path = os.fspath(path)
    with av.open(path, "w", format=container_format, container_options=container_options or {}) as container:
        stream = container.add_stream(codec or pick_codec(), rate=rate)
        assert isinstance(stream, VideoStream), f"{stream.codec_context.name} is not a video codec"
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        if options:
            stream.codec_context.options = dict(options)
        if rotation:
            if hasattr(stream, "set_display_rotation"):  # recent PyAV writes a display matrix
                stream.set_display_rotation(rotation)
            else:  # legacy tag, clockwise degrees
                stream.metadata["rotate"] = str(-rotation % 360)
        if durations_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if durations_ms is not None:
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
                pts += int(durations_ms[i % len(durations_ms)])
            elif first_pts is not None:
                frame.pts, frame.time_base = first_pts + i, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def remux_with_start_offset(src: str | os.PathLike, dst: str | os.PathLike, offset_frames: int,
                            rate: int = 25) -> str:
    """A stream copy of ``src`` whose first ``offset_frames`` frames (at ``rate`` fps) fall before
    the presentation start, as ``ffmpeg -ss ... -c copy`` leaves a cut at a non-key frame: the
    MP4 muxer writes an edit list and the early packets stay in the file, flagged discard."""
    with av.open(os.fspath(src)) as inp, av.open(os.fspath(dst), "w",
                                                 container_options={"avoid_negative_ts": "disabled"}) as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        shift = int(Fraction(offset_frames, rate) / ins.time_base)
        for packet in inp.demux(ins):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = outs
            out.mux(packet)
    return os.fspath(dst)


def write_audio(path: str | os.PathLike, seconds: float = 0.5, codec: str = "aac", rate: int = 16000) -> str:
    """An audio-only file (a sine tone), e.g. ``.m4a`` with AAC or ``.wav`` with pcm_s16le."""
    path = os.fspath(path)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, AudioStream), f"{codec} is not an audio codec"
        samples = int(seconds * rate)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
        # PyAV converts the sample format and re-chunks to the encoder's frame size.
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
