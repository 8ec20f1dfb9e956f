"""Decoding machinery shared by the samplers: packet census, decode loop, frame facts."""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

import av
import numpy as np

from ..limits import Limits
from ._container import declared_rotation, open_video
from ._source import Deadline
from .errors import CorruptMediaError, MediaLimitError

# Undecodable packets tolerated before a video with no good frame is called corrupt.
_MAX_BAD_PACKETS = 64


@dataclass
class PacketScan:
    """Demux-only census of a video stream's packets."""

    count: int = 0
    keys: list = field(default_factory=list)  # (packet ordinal, pts) of key packets, demux order
    sorted_pts: list | None = field(default_factory=list)  # None once a packet lacks pts

    def index_of(self, pts, nth: int, chosen) -> int:
        """Presentation index of the ``nth`` decoded chosen key frame (pts: the frame's)."""
        ordinal, key_pts = self.keys[int(chosen[min(nth, len(chosen) - 1)])]
        pts = key_pts if pts is None else pts
        if pts is not None and self.sorted_pts is not None:
            return bisect.bisect_left(self.sorted_pts, pts)  # packets presented before it
        return ordinal  # decode order: exact unless frames are reordered


def scan_packets(source, limits: Limits, deadline: Deadline) -> PacketScan:
    """Read every packet of the video stream without decoding (cheap next to decoding)."""
    scan = PacketScan()
    with open_video(source, limits) as (container, stream):
        try:
            for packet in container.demux(stream):
                deadline.check()
                if not packet.size:
                    continue
                if packet.is_keyframe:
                    scan.keys.append((scan.count, packet.pts))
                if scan.sorted_pts is not None:
                    if packet.pts is None:
                        scan.sorted_pts = None
                    else:
                        scan.sorted_pts.append(packet.pts)
                scan.count += 1
        except av.FFmpegError:
            pass  # truncated or damaged tail: plan over the packets that exist
    if scan.sorted_pts is not None:
        scan.sorted_pts.sort()
    return scan


class PresentationIndex:
    """Presentation index of each decoded frame, robust to frames a decoder drops.

    Counting decoder output would shift every later index after a damaged
    packet is dropped; counting demuxed packets whose pts is below the
    frame's does not (output is in presentation order, so those packets
    were demuxed already). Without pts it falls back to counting.
    """

    def __init__(self) -> None:
        self._pending: list = []
        self._passed = 0
        self._use_pts = True
        self._last = -1

    def packet(self, pts) -> None:
        if pts is None:
            self._use_pts = False
        elif self._use_pts:
            heapq.heappush(self._pending, pts)

    def frame(self, pts) -> int:
        index = self._last + 1
        if self._use_pts and pts is not None:
            while self._pending and self._pending[0] < pts:
                heapq.heappop(self._pending)
                self._passed += 1
            index = max(index, self._passed)
            if self._pending and self._pending[0] == pts:
                heapq.heappop(self._pending)
                self._passed += 1
        self._last = index
        return index


def decoded_frames(container, stream, source, deadline: Deadline, stats, limits: Limits, wanted=None):
    """``(presentation index, frame)`` pairs; damaged packets are skipped and counted."""
    ctx = stream.codec_context
    ctx.thread_type = "AUTO"
    first_error = None
    order = PresentationIndex()
    packets = container.demux(stream)
    while True:
        deadline.check()
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:  # the demuxer hit damage: drain what the decoder holds
            stats.incomplete = f"demuxing stopped: {exc}"
            packet = None
        if packet is not None and packet.size:
            order.packet(packet.pts)
            if wanted is not None and not wanted(packet):
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
            yield order.frame(frame.pts), frame
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


def frame_seconds(frame, index: int, stream) -> float:
    if frame.pts is not None and frame.time_base:
        start = stream.start_time or 0
        return float((frame.pts - start) * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return index / float(rate) if rate else 0.0
