"""Seeking for uniform sampling: decode from the key frame before each sampled frame.

Decoding every frame up to the last one kept makes a video's cost follow its
length. Here each run of decoding starts at the key frame at or before a
sampled frame (the container's index finds it) and goes forward to it, so the
cost follows the frames sampled: about half a key-frame interval per sample.
Sampled frames closer together than that are reached by decoding on (a seek
would skip nothing, or too little to pay for flushing the decoder).

A frame's index is its position in presentation order; after a seek it is
worked out from the frame's pts, which must map onto indices exactly
(:func:`frame_map`):

* ``ScanMap``: the demux-only packet scan that counted the frames (Matroska,
  MPEG-TS, MP4 with an edit list, ...) lists every shown packet's pts; an
  index is the rank of a pts among them, exact even at a variable frame
  rate, when every packet has a real, unique pts;
* ``GridMap``: the container's own frame count (MP4/MOV): frames at a
  constant rate on a grid ``start + k / rate``; used only when the stream
  declares one frame rate (average and base rate agree), its timestamps are
  real presentation times, and its duration holds exactly its frame count.

Everything the seek path meets is checked: every decoded frame's pts must
map to an index, and indices must follow each other one by one from the key
frame a run starts at. Anything else (a pts off the grid, a gap, a seek that
lands past its target, a decoding or demuxing error, the stream ending early)
raises :class:`SeekMiss`, and the caller decodes straight through from the
start (the exact path) for the frames not given yet; a stream the maps
refuse never seeks at all.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Generator, Protocol, Sequence

import av

from ..limits import Limits
from ._decode import PacketScan
from ._source import Deadline
from .errors import MediaLimitError

#: A seek must skip at least this many frames: it flushes the decoder, and
#: frame threads refill from the key frame.
MIN_SKIP = 16
# Seek attempts per sampled frame: at its own time (or its key frame's), just
# before the key frame that landed past it, _BACK_OFF frames earlier, the start.
_SEEK_TRIES = 4
_BACK_OFF = 256
_START = -(2**62)  # a timestamp before any stream's start: a backward seek lands at the beginning
# After an imprecise landing (not on a key packet), packets this far past the
# target (in presentation order) end the search for a later key frame.
_REORDER_SLACK = 32
# Demuxers that store presentation timestamps (not ones made up from the decode
# order, as AVI does): only these may use the frame-rate grid with B-frames.
_REAL_PTS_DEMUXERS = frozenset(
    {"mov", "mp4", "matroska", "webm", "mpegts", "mpeg", "flv", "nut", "ivf", "ogg", "asf"}
)


class SeekMiss(Exception):
    """The seek path met something it cannot vouch for: decode straight through instead."""


class FrameMap(Protocol):
    first_pts: int

    def index(self, pts: int) -> int | None:
        """Presentation index of the frame with this pts; None when no shown frame has it."""

    def pts(self, index: int) -> int:
        """The pts of the frame at ``index`` (0 <= index < total)."""


class ScanMap:
    """Indices from the sorted pts of every shown packet (a packet scan)."""

    def __init__(self, sorted_pts: Sequence[int]):
        self._pts = sorted_pts
        self.first_pts = sorted_pts[0]

    def index(self, pts: int) -> int | None:
        i = bisect.bisect_left(self._pts, pts)
        return i if i < len(self._pts) and self._pts[i] == pts else None

    def pts(self, index: int) -> int:
        return int(self._pts[index])


class GridMap:
    """Indices on a constant frame-rate grid: frame ``k`` at ``start + k * step`` (time-base units)."""

    def __init__(self, start: int, step: Fraction, total: int):
        self._start, self._step, self._total = start, step, total
        self.first_pts = start
        self._whole = int(step) if step.denominator == 1 else 0  # the common case: integer arithmetic
        # pts are whole ticks: a frame sits within half a tick of its grid point
        self._tolerance = Fraction(1, 2) / step

    def index(self, pts: int) -> int | None:
        if self._whole:
            k, off = divmod(pts - self._start, self._whole)
            return k if off == 0 and 0 <= k < self._total else None
        x = (pts - self._start) / self._step
        k = round(x)
        if abs(x - k) > self._tolerance or not 0 <= k < self._total:
            return None
        return int(k)

    def pts(self, index: int) -> int:
        return self._start + round(index * self._step)


def frame_map(container, stream, total: int, scan: PacketScan | None) -> tuple[FrameMap | None, str]:
    """The exact pts-to-index map for this stream, or None and why there is none."""
    if scan is not None:
        pts = scan.sorted_pts
        if not pts:
            return None, "some packets carry no timestamp"
        if not scan.pts_reliable:
            return None, "the timestamps are made up from the decode order"
        if len(pts) != total or any(a == b for a, b in zip(pts, pts[1:])):
            return None, "the timestamps are not unique"
        return ScanMap(pts), ""
    rate, base, time_base = stream.average_rate, stream.base_rate, stream.time_base
    if not (rate and base and time_base) or rate != base:
        return None, f"no single frame rate (average {rate}, base {base})"
    demuxers = set(container.format.name.split(","))
    ctx = stream.codec_context
    if not demuxers & _REAL_PTS_DEMUXERS and bool(getattr(ctx, "has_b_frames", False)):
        return None, "the container may make up timestamps for reordered frames"
    if stream.start_time is None or stream.duration is None:
        return None, "no start time or duration"
    step = 1 / (Fraction(rate) * Fraction(time_base))  # time-base ticks per frame
    if step < 1 or (step.denominator != 1 and step < 2):
        return None, "the time base is too coarse for the frame rate"
    if abs(Fraction(stream.duration) / step - total) > Fraction(1, 2):
        return None, "the duration does not hold the frame count at a constant rate"
    return GridMap(int(stream.start_time), step, total), ""


@dataclass(frozen=True)
class KeyPoint:
    """Where a run of decoding starts: a key frame at or before a sampled frame."""

    index: int  #: presentation index of the key frame; -1: cut by an edit list, before the first shown frame
    pts: int
    seek_ts: int  #: a timestamp (stream time base) whose backward seek lands at or before it


def _key_index(fmap: FrameMap, packet) -> int | None:
    index = fmap.index(packet.pts)
    if index is None and packet.is_discard and packet.pts < fmap.first_pts:
        return -1  # the decoder drops its frame; decoding from it reaches the first shown frame
    return index


def _earlier(fmap: FrameMap, target: int, ts: int, overshoot, attempt: int) -> int:
    """The next, earlier, seek timestamp after the seek at ``ts`` for ``target`` landed past it."""
    if attempt == 0 and overshoot is not None:
        mark = min(t for t in (overshoot.pts, overshoot.dts) if t is not None)
        return min(ts, mark) - 1  # an index seek then lands on the key frame before that one
    if attempt <= 1 and target > _BACK_OFF:
        return min(ts - 1, fmap.pts(target - _BACK_OFF))
    return _START


def find_key(container, stream, fmap: FrameMap, target: int, deadline: Deadline, want: KeyPoint | None = None):
    """Seek to a key frame at or before ``target``: ``(KeyPoint, key packet, packets)``, or None.

    ``packets`` is the demuxer, positioned just past the key packet; the
    seek has flushed the decoder. With ``want`` (a planned key frame) the
    seek starts at its timestamp and stops at it, or at a later key frame
    still at or before ``target``; without, it looks for the last key frame
    at or before ``target``. Raises SeekMiss when a key frame's pts is not a
    frame position.
    """
    ts = want.seek_ts if want is not None else fmap.pts(target)
    for attempt in range(_SEEK_TRIES):
        deadline.check()
        try:
            container.seek(ts, stream=stream, backward=True)
        except (av.FFmpegError, OSError, ValueError):
            deadline.check()
            return None
        packets = container.demux(stream)
        try:
            found, overshoot = _scan_for_key(packets, fmap, target, deadline, want)
        except av.FFmpegError:  # damaged or cut short: leave it to the exact path
            deadline.check()
            packets.close()
            return None
        except BaseException:
            packets.close()
            raise
        if found is not None:
            index, packet = found
            return KeyPoint(index, packet.pts, ts), packet, packets
        packets.close()
        if ts == _START:
            return None
        ts = _earlier(fmap, target, ts, overshoot, attempt)
    return None


def _scan_for_key(packets, fmap: FrameMap, target: int, deadline: Deadline, want: KeyPoint | None):
    """Demux (no decoding) from a seek's landing to a key frame at or before ``target``.

    Returns ``((index, key packet), None)``; or ``(None, packet)`` when the
    first key frame met is past the target (the seek landed too late);
    or ``(None, None)`` when the stream ended first.
    """
    best = None
    first = True
    for packet in packets:
        deadline.check()
        if not packet.size:  # end of the stream
            break
        if packet.pts is None:
            raise SeekMiss("a packet after a seek has no timestamp")
        landed_on_key, first = first and packet.is_keyframe, False
        if packet.is_keyframe:
            index = _key_index(fmap, packet)
            if index is None:
                raise SeekMiss(f"a key frame's timestamp ({packet.pts}) is not a frame position")
            if index > target:
                return (best, None) if best is not None else (None, packet)
            if want is not None:
                if index >= want.index:
                    return (index, packet), None  # the planned key frame, or a later one before the target
                continue  # landed before the planned key frame: on to it
            best = (index, packet)
            if landed_on_key:
                return best, None  # an index seek lands on the last key frame before the time
        elif best is not None:
            index = fmap.index(packet.pts)
            if index is not None and index > target + _REORDER_SLACK:
                break
    return best, None


def plan_keys(container, stream, fmap: FrameMap, targets: Sequence[int], scan: PacketScan | None,
              deadline: Deadline) -> tuple[list[KeyPoint] | None, str]:
    """The key frame each target's run would start from, found before anything is decoded."""
    if isinstance(fmap, ScanMap) and scan is not None:
        return _keys_from_scan(fmap, scan, targets)
    keys = []
    for target in targets:
        try:
            found = find_key(container, stream, fmap, int(target), deadline)
        except SeekMiss as miss:
            return None, str(miss)
        if found is None:
            return None, f"no key frame could be sought before frame {target}"
        key, _, packets = found
        packets.close()
        keys.append(key)
    return keys, ""


def _keys_from_scan(fmap: ScanMap, scan: PacketScan, targets) -> tuple[list[KeyPoint] | None, str]:
    points = []
    for key in scan.keys:
        if key.pts is None:
            continue
        index = fmap.index(key.pts)
        if index is None and key.discard and key.pts < fmap.first_pts:
            index = -1
        if index is not None:  # demuxers seek by pts or by dts (MPEG-TS): the earlier lands before both
            points.append(KeyPoint(index, key.pts, key.pts if key.dts is None else min(key.pts, key.dts)))
    points.sort(key=lambda p: p.index)
    starts = [p.index for p in points]
    keys = []
    for target in targets:
        i = bisect.bisect_right(starts, int(target)) - 1
        if i < 0:
            return None, f"no key frame before frame {target}"
        keys.append(points[i])
    return keys, ""


def seeks_worth_it(targets: Sequence[int], keys: Sequence[KeyPoint]) -> tuple[int, int]:
    """(seeks after the first run's, frames to decode) for a plan, deciding as run_frames does."""
    seeks, work, pos = 0, 0, None
    for target, key in zip(targets, keys):
        if pos is None or key.index - pos - 1 >= MIN_SKIP:
            seeks += pos is not None
            work += target - max(key.index, 0) + 1
        else:
            work += target - pos
        pos = int(target)
    return seeks, work


def dense(targets: Sequence[int]) -> bool:
    """Whether no seek could skip MIN_SKIP frames: every gap between targets is shorter."""
    return all(b - a - 1 < MIN_SKIP for a, b in zip(targets, targets[1:]))


def run_frames(container, stream, fmap: FrameMap, targets: Sequence[int], keys: Sequence[KeyPoint],
               deadline: Deadline, stats, limits: Limits, source) -> Generator[tuple[int, Any], None, None]:
    """``(index, frame)`` for every frame decoded on the way to the targets, in presentation order.

    A target is reached by decoding on from the last frame when its key
    frame is behind or barely ahead, else by seeking to its key frame.
    Raises SeekMiss on anything unexpected (see the module docstring).
    """
    ctx = stream.codec_context
    ctx.thread_type = "AUTO"  # frame and slice threads; output stays in presentation order
    pos: int | None = None  # index of the last frame out of the decoder in this run
    expect = 0
    packets = None
    pending: list = []
    try:
        for target, key in zip(targets, keys):
            target = int(target)
            if pos is not None and target <= pos:
                continue
            if pos is None or key.index - pos - 1 >= MIN_SKIP:
                if packets is not None:
                    packets.close()
                    packets = None
                found = find_key(container, stream, fmap, target, deadline, want=key)  # flushes the decoder
                if found is None:
                    raise SeekMiss(f"seeking to the key frame before frame {target} failed")
                start, packet, packets = found
                stats.seeks += pos is not None  # not the first run's: that one only finds the start
                pending, pos, expect = [packet], None, max(start.index, 0)
            while pos is None or pos < target:
                packet = pending.pop() if pending else _next_packet(packets, deadline, target)
                try:
                    frames = ctx.decode(packet)
                except av.FFmpegError as exc:
                    deadline.check()
                    raise SeekMiss(f"a packet before frame {target} did not decode ({exc})") from None
                for frame in frames:
                    stats.decoded += 1
                    if stats.decoded > limits.max_decoded_frames:
                        raise MediaLimitError(
                            source,
                            f"decoded more than Limits.max_decoded_frames={limits.max_decoded_frames} frames",
                        )
                    index = fmap.index(frame.pts) if frame.pts is not None else None
                    if index is None:
                        raise SeekMiss(f"a frame's timestamp ({frame.pts}) is not a frame position")
                    if pos is None:
                        if index < expect:  # a leading picture of an open GOP: shown before the key frame
                            continue
                        if index != expect:
                            raise SeekMiss(f"decoding from key frame {expect} began at frame {index}")
                    elif index != pos + 1:
                        raise SeekMiss(f"frame {index} followed frame {pos}")
                    pos = index
                    yield index, frame
                if not packet.size and (pos is None or pos < target):
                    raise SeekMiss(f"the stream ended before frame {target}")
    finally:
        if packets is not None:
            packets.close()


def _next_packet(packets, deadline: Deadline, target: int):
    deadline.check()
    try:
        packet = next(packets)
    except StopIteration:
        deadline.check()  # the reader ends the file early once the budget is spent
        raise SeekMiss(f"the stream ended before frame {target}") from None
    except av.FFmpegError as exc:
        deadline.check()
        raise SeekMiss(f"demuxing stopped before frame {target} ({exc})") from None
    return packet
