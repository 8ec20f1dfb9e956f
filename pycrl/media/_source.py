"""Shared plumbing for decoders: reading a source safely and a decode-time budget."""

from __future__ import annotations

import io
import os
import stat
import time

from ..limits import Limits
from .errors import CorruptMediaError, MediaNotFoundError, MediaTimeoutError

# Leading bytes of video containers FFmpeg reads. Used only to word an error:
# when FFmpeg refuses a file, a known signature means "broken" (corrupt), no
# signature means "not a video format" (unsupported).
_VIDEO_SIGNATURES = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),  # MP4/MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF / WMV
)


def looks_like_video(head: bytes) -> str | None:
    """Name of the container family ``head`` starts like, else None."""
    for offset, magic in _VIDEO_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return magic.decode("latin-1") if magic.isalpha() else magic.hex()
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "AVI"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS"
    return None


def is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def check_file(source) -> int:
    """Size in bytes of the regular file at ``source``; typed error if missing or empty."""
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise MediaNotFoundError(source, "no such file") from None
    except OSError as exc:
        raise MediaNotFoundError(source, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise MediaNotFoundError(source, "not a regular file")
    if info.st_size == 0:
        raise CorruptMediaError(source, "empty file (0 bytes)")
    return info.st_size


def read_head(source, size: int = 512) -> bytes:
    """The first bytes of a path or bytes-like source (for error wording only)."""
    if is_path(source):
        try:
            with open(source, "rb") as fh:
                return fh.read(size)
        except OSError:
            return b""
    return bytes(memoryview(source)[:size])


def as_file(source):
    """A path string or a fresh binary file object that av.open / PIL can read."""
    if is_path(source):
        return os.fspath(source)
    return io.BytesIO(source)


class Deadline:
    """Time budget for decoding one item, counting only time spent inside pycrl.

    Generators call ``suspend()`` before yielding a frame and ``resume()``
    after, so a slow consumer (face detection, a network) does not eat the
    decoder's budget.
    """

    def __init__(self, source, limits: Limits):
        self._source = source
        self._budget = limits.timeout_s
        self._spent = 0.0
        self._start: float | None = time.monotonic()

    def suspend(self) -> None:
        if self._start is not None:
            self._spent += time.monotonic() - self._start
            self._start = None

    def resume(self) -> None:
        if self._start is None:
            self._start = time.monotonic()

    @property
    def spent(self) -> float:
        running = 0.0 if self._start is None else time.monotonic() - self._start
        return self._spent + running

    def check(self) -> None:
        if self.spent > self._budget:
            raise MediaTimeoutError(
                self._source, f"decoding took longer than {self._budget:g} s (Limits.timeout_s)"
            )
