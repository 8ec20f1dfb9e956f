"""Atomic file writes: a reader sees the old file or the new one, never half of either; and
reading files only when they are plain files (`open_regular`).

Every file pycrl writes for others to read (model folders, ONNX graphs and their records,
engines, result parts, summaries, checkpoints) goes through `atomic_path`: the content is
written to a temporary sibling, then renamed over the target (a rename within one folder is
atomic on POSIX and Windows). A failed write leaves no temporary behind.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def _default_tmp(path: Path) -> Path:
    # pid and thread: two writers of one target never share a temporary
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike, *, tmp: Path | None = None, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path``.

    ``tmp`` names the temporary (default: a hidden sibling unique to this process and
    thread). ``durable`` fsyncs the file and the folder, so that the new content survives
    a power cut, not only a crash of this process.
    """
    path = Path(path)
    tmp = tmp or _default_tmp(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, tmp: Path | None = None,
                 durable: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_path(path, tmp=tmp, durable=durable) as t:
        t.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, tmp: Path | None = None, durable: bool = False) -> None:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    atomic_write(path, json.dumps(obj, indent=2) + "\n", tmp=tmp, durable=durable)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a directory
        pass
    finally:
        os.close(fd)


# -- reading files a stranger may have made -------------------------------------------------

def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a plain file"


def check_regular(path: str | os.PathLike, error: Callable[[str], Exception] = ValueError) -> os.stat_result:
    """``path``'s stat when it is a regular file (a link to one is fine); else ``error``.

    Opening a FIFO for reading blocks until some writer appears (forever, for a planted one),
    and a device (/dev/zero, /dev/urandom) never ends: model files and checkpoints are checked
    before anything opens them. For files a library opens by name (safetensors, ONNX Runtime,
    OpenVINO) this is checked just before; a swap in between needs write access to the folder,
    and files pycrl reads itself go through `open_regular`, which has no such gap.
    A missing file raises FileNotFoundError as ``open`` would.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {_kind(st.st_mode)}, not a regular file: refused before opening it")
    return st


@contextmanager
def open_regular(path: str | os.PathLike, error: Callable[[str], Exception] = ValueError) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading only if it is a regular file (see `check_regular`).

    Checked twice: by name first, then on the opened descriptor, which is opened non-blocking
    so that a FIFO swapped in between cannot block the open itself."""
    check_regular(path, error)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: {_kind(mode)}, not a regular file: refused before reading it")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_regular(path: str | os.PathLike, limit: int, error: Callable[[str], Exception] = ValueError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (else ``error``)."""
    with open_regular(path, error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path}: larger than {limit} bytes, more than this file may hold")
    return data
