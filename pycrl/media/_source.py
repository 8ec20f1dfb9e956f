"""Shared plumbing for decoders: reading a source safely and a decode-time budget.

Every input is read as a local file (or bytes in memory) through a Python file
object: no decoder is ever given a name to resolve, so a file called
``tcp:host:port`` or ``http:...`` is just a file, and a path is opened only
after it is known to be a regular file.
"""

from __future__ import annotations

import io
import os
import re
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
    """Size in bytes of the regular file at ``source``; typed error if missing or empty.

    A ``stat`` before any ``open``: opening a FIFO blocks until a writer comes,
    opening a device can have side effects.
    """
    return _checked_size(source, _stat(source, os.fspath(source)))


def _stat(source, path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise MediaNotFoundError(source, "no such file") from None
    except OSError as exc:
        raise MediaNotFoundError(source, f"cannot be read ({exc.strerror or exc})") from None


def _checked_size(source, info: os.stat_result) -> int:
    if not stat.S_ISREG(info.st_mode):
        raise MediaNotFoundError(source, "not a regular file")
    if info.st_size == 0:
        raise CorruptMediaError(source, "empty file (0 bytes)")
    return info.st_size


# O_NONBLOCK: if the path is swapped for a FIFO between the stat and the open,
# the open returns at once (and fstat refuses it) instead of waiting for a writer.
_OPEN_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def open_local(source):
    """The regular file at ``source``, opened read-only by absolute path (a binary file object).

    Checked again on the open descriptor, so what is read is what was checked.
    """
    path = os.path.abspath(os.fspath(source))
    _checked_size(source, _stat(source, path))  # before opening: see check_file
    try:
        fh = open(path, "rb", opener=lambda name, flags: os.open(name, flags | _OPEN_FLAGS))  # noqa: SIM115
    except FileNotFoundError:
        raise MediaNotFoundError(source, "no such file") from None
    except OSError as exc:
        raise MediaNotFoundError(source, f"cannot be read ({exc.strerror or exc})") from None
    try:
        _checked_size(source, os.fstat(fh.fileno()))
    except BaseException:
        fh.close()
        raise
    return fh


def as_file(source):
    """A fresh binary file object over a path (opened with ``open_local``) or bytes."""
    if is_path(source):
        return open_local(source)
    return io.BytesIO(source)


# The only name a decoder sees: no folder to resolve references against, no
# pattern (image2's "%03d"), no protocol; the extension stays as a format hint.
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


def neutral_name(source) -> str:
    if is_path(source):
        suffix = os.path.splitext(os.fspath(source))[1]
        if _SAFE_SUFFIX.fullmatch(suffix):
            return "input" + suffix.lower()
    return "input"


class BudgetedReader:
    """The file object FFmpeg reads through: local bytes only, and the time budget on every read.

    Once the budget is spent a read reports end of file (an exception raised
    here would be stashed by PyAV and could surface in an unrelated call);
    the caller's ``Deadline.check`` then raises ``MediaTimeoutError``.
    """

    def __init__(self, raw, deadline: "Deadline", name: str):
        self._raw = raw
        self._deadline = deadline
        self.name = name  # what PyAV hands FFmpeg as the URL: never the real path

    def read(self, size: int = -1) -> bytes:
        if self._deadline.expired:
            return b""
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()


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

    @property
    def remaining(self) -> float:
        return self._budget - self.spent

    @property
    def expired(self) -> bool:
        return self.spent > self._budget

    def check(self) -> None:
        if self.expired:
            raise MediaTimeoutError(
                self._source, f"decoding took longer than {self._budget:g} s (Limits.timeout_s)"
            )
