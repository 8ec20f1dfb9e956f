"""Frame sampling from videos with PyAV on the CPU.

Two modes, both streaming (one decoded frame alive at a time, never the whole
video):

``uniform``
    DeepfakeBench's protocol: ``np.linspace(0, total - 1, n, dtype=int)``
    frame indices over the whole video; only the kept frames are converted to
    RGB (conversion costs as much as decoding). ``total`` is the container's
    frame count (``nb_frames``, exact for MP4/MOV) or, when the container has
    none (Matroska/WebM, raw streams), an exact count from a demux-only first
    pass over the packets (reads the file, does not decode it). Indices count
    frames in presentation order, so variable frame rate videos are sampled by
    frame, like OpenCV's sequential read in DeepfakeBench, and timestamps come
    from each frame's pts.

    The frames are reached by seeking: each run of decoding starts at the key
    frame before a sampled frame and decodes forward to it, so the cost
    follows the frames sampled, not the video's length (see ``_seek``). That
    needs every frame's index to follow exactly from its pts: the packet
    scan's pts, or a constant frame rate the container vouches for. Otherwise
    (variable frame rate with the container's own count, missing or made-up
    timestamps, no key frame found by seeking, or sampled frames too close
    together for a seek to skip enough) the video is decoded straight through
    from the start, and ``stats.sequential`` says why. Both give the same
    frames.

    Decoding straight through, a frame's index is worked out from pts, not by
    counting decoder output, so frames a damaged packet loses do not shift the
    rest; a lost target frame is replaced by the next good one. If the stream
    ends early (truncated file, a header that over-counts), the last decoded
    frame closes the sample and ``stats.incomplete`` says so. The seek path
    hands any such surprise to the straight path, which continues after the
    frames already given.

``keyframes``
    Only key frames are decoded: a demux-only pass lists the key packets, at
    most ``n`` are chosen evenly with the same linspace rule, and only those
    packets reach the decoder (``skip_frame="NONKEY"`` guards the rest). Far
    cheaper on long videos; the frames are the encoder's choice of positions.
    Key frames an MP4 edit list cuts from the presentation are passed over
    while others exist; when none does, the cut ones are decoded anyway (the
    decoder would drop them), so a trimmed clip still gives frames.

Frames come out as RGB uint8 HWC with the display rotation applied.
``Frame.time`` never goes backwards within a pass: frames before the stream
start (negative or edit-list timestamps) read as 0, and when pts are missing
or made up from the decode order (AVI with B-frames) both the index and the
time come from counting frames in presentation order.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Iterator

import av
import numpy as np

from ..limits import DEFAULT_LIMITS, Limits
from ._container import VideoInfo, check_geometry, open_video, video_info
from ._decode import (
    Clock,
    PacketScan,
    decoded_frames,
    display_rotation,
    scan_packets,
    to_rgb,
)
from ._seek import SeekMiss, dense, frame_map, plan_keys, run_frames, seeks_worth_it
from ._source import Deadline
from .errors import CorruptMediaError, MediaLimitError

__all__ = [
    "Frame",
    "FrameSampler",
    "SamplingStats",
    "VideoInfo",
    "plan_uniform",
    "probe_video",
    "sample_frames",
    "uniform_indices",
]

MODES = ("uniform", "keyframes")


@dataclass(frozen=True)
class Frame:
    """One sampled frame."""

    index: int  #: position in presentation order, counting from 0
    time: float  #: seconds since the start of the stream (from pts)
    image: np.ndarray  #: RGB uint8, shape (H, W, 3), display orientation
    key_frame: bool


@dataclass
class SamplingStats:
    """What one pass of a sampler did; filled in as frames are produced."""

    mode: str
    total_frames: int | None = None  #: frames the plan was made over
    count_source: str | None = None  #: "container" or "packet-scan"
    key_frames: int | None = None  #: key frames found (keyframes mode)
    planned: tuple[int, ...] = ()  #: frame indices (uniform) or key-frame ordinals (keyframes)
    decoded: int = 0  #: frames the decoder produced
    converted: int = 0  #: frames converted to RGB (== frames yielded)
    bad_packets: int = 0  #: packets the decoder rejected
    incomplete: str | None = None  #: why fewer frames than planned came out, if so
    decode_seconds: float = 0.0  #: time spent inside the sampler
    seeks: int = 0  #: seeks that skipped frames (uniform mode)
    sequential: str | None = None  #: why uniform mode decoded straight through from the start, if it did


def sample_frames(source, n: int = 32, mode: str = "uniform", limits: Limits | None = None) -> "FrameSampler":
    """Iterate over up to ``n`` RGB frames of a video (path or bytes), lazily.

    Errors about the file (``pycrl.media.MediaError`` subclasses) are raised
    when iteration starts; bad arguments raise ``ValueError`` at once.
    """
    return FrameSampler(source, n=n, mode=mode, limits=limits)


def probe_video(source, limits: Limits | None = None) -> VideoInfo:
    """Container facts about a video, checked against the limits.

    Decodes the first frame, because the display rotation travels with
    decoded frames in current FFmpeg.
    """
    limits = limits or DEFAULT_LIMITS
    deadline = Deadline(source, limits)
    with open_video(source, limits, deadline) as (container, stream):
        info = video_info(container, stream)
        stats = SamplingStats("probe")
        for _, frame, _ in decoded_frames(container, stream, source, deadline, stats, limits):
            return _with_rotation(info, display_rotation(frame, stream))
        return info


class FrameSampler:
    """Iterable over sampled :class:`Frame` objects; each iteration decodes afresh.

    After (or during) iteration, ``info`` holds the stream facts and ``stats``
    what was decoded, converted and planned.
    """

    def __init__(self, source, n: int = 32, mode: str = "uniform", limits: Limits | None = None,
                 *, _seek: bool = True):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.source = source
        self.n = int(n)
        self.mode = mode
        self.limits = limits or DEFAULT_LIMITS
        self.info: VideoInfo | None = None
        self.stats = SamplingStats(mode)
        self._seek = _seek  # False: always decode straight through (the reference the tests compare with)

    def __iter__(self) -> Iterator[Frame]:
        deadline = Deadline(self.source, self.limits)
        self.stats = SamplingStats(self.mode)
        try:
            run = self._uniform if self.mode == "uniform" else self._keyframes
            for frame in run(deadline):
                deadline.suspend()
                yield frame
                deadline.resume()
        finally:
            self.stats.decode_seconds = deadline.spent

    # -- uniform ---------------------------------------------------------
    def _uniform(self, deadline: Deadline) -> Iterator[Frame]:
        src, limits, stats = self.source, self.limits, self.stats
        done = -1  # index of the last frame given
        with open_video(src, limits, deadline) as (container, stream):
            self.info = video_info(container, stream)
            total, stats.count_source, scan = _frame_count(src, stream, limits, deadline)
            targets = uniform_indices(total, self.n)
            stats.total_frames, stats.planned = total, tuple(int(i) for i in targets)

            fmap, keys, moved, plan = None, None, False, targets.tolist()
            if not self._seek:
                stats.sequential = "seeking turned off"
            elif dense(plan):
                stats.sequential = "the sampled frames are too close together for seeking to skip any"
            else:
                fmap, why = frame_map(container, stream, total, scan)
                if fmap is None:
                    stats.sequential = f"frame positions do not follow from timestamps: {why}"
                else:
                    moved = scan is None  # finding key frames seeks the demuxer
                    keys, why = plan_keys(container, stream, fmap, plan, scan, deadline)
                    if keys is None:
                        stats.sequential = why
                    else:
                        seeks, work = seeks_worth_it(plan, keys)
                        if seeks == 0:
                            keys, stats.sequential = None, "no key frame between sampled frames is worth a seek"
                        else:
                            _check_work(src, work, limits, " (seeking to the key frame before each)")
            if keys is None and not moved:
                yield from self._sequential(container, stream, targets, deadline)
                return
            if keys is not None:
                assert fmap is not None
                try:
                    for frame in self._seeking(container, stream, fmap, plan, keys, deadline):
                        done = frame.index
                        yield frame
                    return
                except SeekMiss as miss:
                    stats.sequential = f"{miss}; decoded straight through from the start"
        remaining = targets[targets > done]
        if len(remaining):
            with open_video(src, limits, deadline) as (container, stream):
                yield from self._sequential(container, stream, remaining, deadline, done)

    def _seeking(self, container, stream, fmap, targets, keys, deadline: Deadline) -> Iterator[Frame]:
        """The targets, reached by seeking (``_seek.run_frames``); SeekMiss when it cannot vouch for one."""
        src, limits = self.source, self.limits
        clock = Clock(stream)
        wanted = 0
        frames = run_frames(container, stream, fmap, targets, keys, deadline, self.stats, limits, src)
        with contextlib.closing(frames):
            for index, frame in frames:
                seconds = clock.seconds(frame, index)  # every frame: keeps the clock monotonic
                _check_frame(src, frame, seconds, limits)
                if index > targets[wanted]:
                    raise SeekMiss(f"frame {targets[wanted]} was passed over")
                if index == targets[wanted]:
                    yield self._convert(frame, index, seconds, stream)
                    wanted += 1
                    if wanted == len(targets):
                        return

    def _sequential(self, container, stream, targets, deadline: Deadline, done: int = -1) -> Iterator[Frame]:
        """Decode straight through from the start to each target; frames up to ``done`` were given already."""
        src, limits, stats = self.source, self.limits, self.stats
        _check_work(src, stats.decoded + int(targets[-1]) + 1, limits)
        clock = Clock(stream)
        wanted, last, last_index, yielded_last = 0, None, -1, False
        for index, frame, pts_ok in decoded_frames(container, stream, src, deadline, stats, limits):
            seconds = clock.seconds(frame, index, pts_ok)  # every frame: keeps the clock monotonic
            _check_frame(src, frame, seconds, limits)
            last, last_index, last_seconds, yielded_last = frame, index, seconds, False
            if index >= targets[wanted]:  # ">": a damaged target frame is replaced by the next good one
                yield self._convert(frame, index, seconds, stream)
                yielded_last = True
                while wanted < len(targets) and targets[wanted] <= index:
                    wanted += 1
                if wanted == len(targets):
                    return
        if last is None:
            if done >= 0:  # the seek path gave frames this pass cannot reach
                stats.incomplete = "no frame could be decoded straight through"
                return
            raise CorruptMediaError(src, _why_nothing(stats))
        stats.incomplete = f"stream ended after {last_index + 1} of {stats.total_frames} frames"
        if not yielded_last and last_index > done:  # keep the end of the video in the sample, as linspace intends
            yield self._convert(last, last_index, last_seconds, stream)

    # -- keyframes -------------------------------------------------------
    def _keyframes(self, deadline: Deadline) -> Iterator[Frame]:
        src, limits, stats = self.source, self.limits, self.stats
        scan = scan_packets(src, limits, deadline)
        stats.key_frames, stats.total_frames, stats.count_source = len(scan.keys), scan.count, "packet-scan"
        if not scan.keys:
            raise CorruptMediaError(src, "the video stream has no key frames")
        # Key frames cut by an edit list (discard flag) are dropped by the decoder:
        # choose among the presented ones, or among all when every one is cut.
        candidates = [i for i, key in enumerate(scan.keys) if not key.discard] or list(range(len(scan.keys)))
        chosen = [candidates[int(i)] for i in uniform_indices(len(candidates), self.n)]
        stats.planned = tuple(chosen)
        chosen_set = set(chosen)

        with open_video(src, limits, deadline) as (container, stream):
            self.info = video_info(container, stream)
            stream.codec_context.skip_frame = "NONKEY"
            start = scan.sorted_pts[0] if scan.sorted_pts else None
            clock = Clock(stream, start=start)
            key_ordinal = -1

            def select(packet):
                nonlocal key_ordinal
                if not packet.is_keyframe:
                    return None
                key_ordinal += 1
                if key_ordinal not in chosen_set:
                    return None
                return _presented(packet) if packet.is_discard else packet

            got, last_index = 0, -1
            for _, frame, _ in decoded_frames(container, stream, src, deadline, stats, limits, select):
                if not frame.key_frame:  # a decoder that ignores skip_frame
                    continue
                index = max(scan.index_of(frame.pts, got, chosen), last_index + 1)
                seconds = clock.seconds(frame, index, scan.pts_reliable)
                _check_frame(src, frame, seconds, limits)
                yield self._convert(frame, index, seconds, stream)
                got, last_index = got + 1, index
            if got == 0:
                raise CorruptMediaError(src, _why_nothing(stats))
            if got < len(chosen):
                stats.incomplete = f"decoded {got} of {len(chosen)} chosen key frames"

    # -- shared ----------------------------------------------------------
    def _convert(self, frame, index: int, seconds: float, stream) -> Frame:
        image = to_rgb(frame)
        rotation = display_rotation(frame, stream)
        if rotation:
            image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
        if self.info is not None and self.info.rotation != rotation:
            self.info = _with_rotation(self.info, rotation)
        self.stats.converted += 1
        return Frame(index=index, time=seconds, image=image, key_frame=bool(frame.key_frame))


def uniform_indices(total: int, n: int) -> np.ndarray:
    """DeepfakeBench's choice: ``linspace(0, total - 1, n)`` as int, each index once, sorted."""
    if total < 1 or n < 1:
        raise ValueError(f"need total >= 1 and n >= 1, got total={total}, n={n}")
    return np.unique(np.linspace(0, total - 1, n, dtype=int))


def plan_uniform(source, n: int = 32, limits: Limits | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Frame indices uniform sampling would keep, without decoding (for the DALI path)."""
    limits = limits or DEFAULT_LIMITS
    deadline = Deadline(source, limits)
    with open_video(source, limits, deadline) as (container, stream):
        total, _, _ = _frame_count(source, stream, limits, deadline)
        _check_work(source, total, limits)  # the DALI path decodes every frame up to the last one kept
        return uniform_indices(total, n), video_info(container, stream)


def _frame_count(source, stream, limits: Limits, deadline: Deadline) -> tuple[int, str, PacketScan | None]:
    """Frames in the stream, where the number came from, and the packet scan if one counted them."""
    total, origin, scan = stream.frames, "container", None
    if total <= 0 or _count_disagrees(stream):  # Matroska, WebM, raw streams, edit lists: count packets
        scan = scan_packets(source, limits, deadline)
        total, origin = scan.count, "packet-scan"
    if total <= 0:
        raise CorruptMediaError(source, "the video stream holds no frames")
    return total, origin, scan


def _check_work(source, frames: int, limits: Limits, how: str = "") -> None:
    """Refuse up front a plan that would decode more than Limits.max_decoded_frames."""
    if frames > limits.max_decoded_frames:
        raise MediaLimitError(
            source,
            f"uniform sampling would decode {frames} frames{how}, over Limits.max_decoded_frames="
            f"{limits.max_decoded_frames}; use mode='keyframes' for long videos",
        )


def _count_disagrees(stream) -> bool:
    """The container's frame count does not fit its duration: an MP4 edit list hides frames.

    ``nb_frames`` counts every stored sample, shown or not; the stream's duration
    is what is shown. Then only a packet scan gives the count of shown frames.
    """
    rate = stream.average_rate
    if not stream.duration or not stream.time_base or not rate:
        return False
    shown = float(stream.duration * stream.time_base * rate)
    return stream.frames - shown > max(1.5, 0.02 * stream.frames)


def _presented(packet):
    """A copy of ``packet`` without the discard flag (PyAV cannot clear it in place)."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.time_base, copy.is_keyframe = packet.pts, packet.dts, packet.time_base, True
    return copy


def _check_frame(source, frame, seconds: float, limits: Limits) -> None:
    check_geometry(source, frame.width, frame.height, limits)
    if seconds > limits.max_video_seconds:
        raise MediaLimitError(source, f"video runs past Limits.max_video_seconds={limits.max_video_seconds:g}")


def _with_rotation(info: VideoInfo, rotation: int) -> VideoInfo:
    turned = (rotation - info.rotation) % 180 == 90
    w, h = (info.height, info.width) if turned else (info.width, info.height)
    return dataclasses.replace(info, rotation=rotation, width=w, height=h)


def _why_nothing(stats: SamplingStats) -> str:
    reason = "no frame could be decoded"
    if stats.bad_packets:
        reason += f" ({stats.bad_packets} packets rejected by the decoder)"
    if stats.incomplete:
        reason += f"; {stats.incomplete}"
    return reason
