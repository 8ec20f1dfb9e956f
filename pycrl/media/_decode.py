"""Decoding machinery shared by the samplers: packet census, decode loop, frame facts."""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import av
import numpy as np

from ..limits import Limits
from ._container import declared_rotation, open_video
from ._source import Deadline
from .errors import CorruptMediaError, MediaLimitError

# Undecodable packets tolerated before a video with no good frame is called corrupt.
_MAX_BAD_PACKETS = 64


class KeyPacket(NamedTuple):
    ordinal: int  #: position among the stream's shown packets, demux order
    pts: int | None
    discard: bool  #: before an MP4 edit list's start: the decoder would drop its frame
    dts: int | None = None  #: decode timestamp (what some demuxers seek by)


@dataclass
class PacketScan:
    """Demux-only census of a video stream's packets.

    Packets an edit list cuts from the presentation (discard flag) are not
    counted: indices are positions among the frames a player shows.
    """

    count: int = 0
    keys: list = field(default_factory=list)  # KeyPacket of each key packet, demux order
    sorted_pts: list | None = field(default_factory=list)  # None once a packet lacks pts
    pts_reliable: bool = True  #: see PtsCheck

    def index_of(self, pts, nth: int, chosen) -> int:
        """Presentation index of the ``nth`` decoded chosen key frame (pts: the frame's)."""
        key = self.keys[int(chosen[min(nth, len(chosen) - 1)])]
        ordinal, key_pts = key.ordinal, key.pts
        pts = key_pts if pts is None or not self.pts_reliable else pts
        if pts is not None and self.sorted_pts is not None and self.pts_reliable:
            return bisect.bisect_left(self.sorted_pts, pts)  # packets presented before it
        return ordinal  # decode order: exact unless frames are reordered


class PtsCheck:
    """Whether a stream's pts can be trusted to order frames.

    A decoder that reorders frames (B-frames) meets real pts out of order in
    demux order. When its packets' pts only ever grow, they were made up
    from the decode order (AVI stores no pts), and the pts FFmpeg attaches
    to decoded frames are then shuffled: order by counting instead.
    """

    def __init__(self, stream):
        ctx = stream.codec_context
        self._reorders = bool(ctx is not None and getattr(ctx, "has_b_frames", False))
        self._max = None
        self.reordered = False

    def packet(self, pts) -> None:
        if pts is None:
            return
        if self._max is not None and pts < self._max:
            self.reordered = True
        self._max = pts if self._max is None else max(self._max, pts)

    @property
    def reliable(self) -> bool:
        return self.reordered or not self._reorders


def scan_packets(source, limits: Limits, deadline: Deadline) -> PacketScan:
    """Read every packet of the video stream without decoding (cheap next to decoding)."""
    scan = PacketScan()
    with open_video(source, limits, deadline) as (container, stream):
        check = PtsCheck(stream)
        try:
            for packet in container.demux(stream):
                deadline.check()
                if not packet.size:
                    continue
                check.packet(packet.pts)
                if packet.is_keyframe:
                    scan.keys.append(KeyPacket(scan.count, packet.pts, bool(packet.is_discard), packet.dts))
                if packet.is_discard:
                    continue
                if scan.sorted_pts is not None:
                    if packet.pts is None:
                        scan.sorted_pts = None
                    else:
                        scan.sorted_pts.append(packet.pts)
                scan.count += 1
        except av.FFmpegError:
            pass  # truncated or damaged tail: plan over the packets that exist
        deadline.check()  # the reader ends the file early once the budget is spent
        scan.pts_reliable = check.reliable
    if scan.sorted_pts is not None:
        scan.sorted_pts.sort()
    return scan


class PresentationIndex:
    """Presentation index of each decoded frame, robust to frames a decoder drops.

    Counting decoder output would shift every later index after a damaged
    packet is dropped; counting demuxed packets whose pts is below the
    frame's does not (output is in presentation order, so those packets
    were demuxed already). Without trustworthy pts (none, made up from the
    decode order, or going backwards in output) it falls back to counting.
    """

    def __init__(self, stream) -> None:
        self._pending: list = []
        self._passed = 0
        self._use_pts = True
        self._last = -1
        self._last_pts = None
        self._check = PtsCheck(stream)
        self.pts_ok = True  #: whether the last frame's index (and so its time) came from its pts

    def packet(self, pts, discard: bool = False) -> None:
        self._check.packet(pts)
        if discard:  # cut by an edit list: the decoder drops its frame, and it is not shown
            return
        if pts is None:
            self._use_pts = False
        elif self._use_pts:
            heapq.heappush(self._pending, pts)

    def frame(self, pts) -> int:
        index = self._last + 1
        if pts is not None and self._last_pts is not None and pts <= self._last_pts:
            self._use_pts = False  # output is in presentation order: these pts are not
        self.pts_ok = self._use_pts and pts is not None and self._check.reliable
        if self.pts_ok:
            while self._pending and self._pending[0] < pts:
                heapq.heappop(self._pending)
                self._passed += 1
            index = max(index, self._passed)
            if self._pending and self._pending[0] == pts:
                heapq.heappop(self._pending)
                self._passed += 1
        self._last = index
        self._last_pts = pts if pts is not None else self._last_pts
        return index


class Clock:
    """Seconds since the stream start for each frame of one pass; never goes backwards.

    From the frame's pts when they can be trusted, else from its index and
    the frame rate. Frames before the stream's start (negative or edit-list
    timestamps) and pts that step back read as the latest time so far.
    """

    def __init__(self, stream, start=None):
        self._start = stream.start_time if stream.start_time is not None else start
        rate = stream.average_rate or stream.guessed_rate
        self._rate = float(rate) if rate else None
        self._last = 0.0

    def seconds(self, frame, index: int, pts_ok: bool = True) -> float:
        from_pts = frame.pts is not None and frame.time_base
        if from_pts and (pts_ok or not self._rate):
            t = float((frame.pts - (self._start or 0)) * frame.time_base)
        elif self._rate:
            t = index / self._rate
        else:
            t = self._last
        if math.isfinite(t) and t > self._last:
            self._last = t
        return self._last


def decoded_frames(container, stream, source, deadline: Deadline, stats, limits: Limits, select=None):
    """``(presentation index, frame, pts_ok)`` triples; damaged packets are skipped and counted.

    ``select(packet)`` returns the packet to decode (possibly a copy) or None to skip it.
    ``pts_ok`` says whether the frame's pts can be trusted for its time (see Clock).
    """
    ctx = stream.codec_context
    ctx.thread_type = "AUTO"
    first_error = None
    order = PresentationIndex(stream)
    packets = container.demux(stream)
    while True:
        deadline.check()
        try:
            packet = next(packets)
        except StopIteration:
            deadline.check()  # the reader ends the file early once the budget is spent
            return
        except av.FFmpegError as exc:  # the demuxer hit damage: drain what the decoder holds
            deadline.check()
            stats.incomplete = f"demuxing stopped: {exc}"
            packet = None
        if packet is not None and packet.size:
            order.packet(packet.pts, packet.is_discard)
            if select is not None:
                packet = select(packet)
                if packet is None:
                    continue
        try:
            frames = ctx.decode(packet)
        except av.FFmpegError as exc:
            stats.bad_packets += 1
            first_error = first_error or exc
            if stats.bad_packets > _MAX_BAD_PACKETS and stats.decoded == 0:
                raise CorruptMediaError(source, f"no decodable frame ({first_error})") from None
            if packet is None:
                return
            continue
        for frame in frames:
            stats.decoded += 1
            if stats.decoded > limits.max_decoded_frames:
                raise MediaLimitError(
                    source, f"decoded more than Limits.max_decoded_frames={limits.max_decoded_frames} frames"
                )
            index = order.frame(frame.pts)
            yield index, frame, order.pts_ok
        if packet is None:
            return


def to_rgb(frame) -> np.ndarray:
    # Honour a full-range tag on non-"j" formats (OpenCV ignores it); the
    # colour matrix comes from the frame's colorspace tag (PyAV's default).
    if getattr(frame, "color_range", 0):
        try:
            return frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
        except TypeError:  # a PyAV whose reformat has no range arguments
            pass
    return frame.to_ndarray(format="rgb24")


def display_rotation(frame, stream=None) -> int:
    """Counter-clockwise display rotation in degrees, snapped to a multiple of 90.

    ``VideoFrame.rotation`` reads the frame's display matrix (mirror flags
    in the matrix are ignored); a PyAV without it falls back to the
    stream's legacy ``rotate`` tag.
    """
    degrees = getattr(frame, "rotation", None)
    if degrees is None:
        degrees = declared_rotation(stream) if stream is not None else 0
    return int(round(degrees / 90.0)) % 4 * 90
