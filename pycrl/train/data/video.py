"""Video files with PyAV: count frames, decode only chosen frames, write short clips."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pycrl.train.data.errors import FrameReadError, MissingFramesError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def _open(path: str | Path):
    import av

    if not Path(path).is_file():
        raise MissingFramesError(f"video not found: {path}")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:  # corrupt or not a video
        raise FrameReadError(f"could not open video {path}: {exc}") from exc


def count_frames(path: str | Path) -> int:
    """Number of video frames: the container's count, else counted by demuxing (no decoding)."""
    with _open(path) as container:
        if not container.streams.video:
            raise FrameReadError(f"no video stream in {path}")
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def read_frames(path: str | Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Decode sequentially and convert to RGB only the frames in ``indices``; {index: HxWx3 uint8}."""
    wanted = sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = wanted[-1]
        keep = set(wanted)
        for i, frame in enumerate(container.decode(stream)):
            if i in keep:
                out[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return out


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, crf: int = 18) -> None:
    """Write RGB uint8 frames as H.264 MP4 (MPEG-4 Part 2 when libx264 is absent); even sizes only."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                h, w = frame.shape[:2]
                codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
                # one thread keeps the encoded bytes reproducible
                options = {"crf": str(crf), "preset": "veryfast", "threads": "1"} if codec == "libx264" else {}
                stream = container.add_stream(codec, rate=fps, options=options)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
