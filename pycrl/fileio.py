"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file pycrl writes for others to read (model folders, ONNX graphs and their records,
engines, result parts, summaries, checkpoints) goes through `atomic_path`: the content is
written to a temporary sibling, then renamed over the target (a rename within one folder is
atomic on POSIX and Windows). A failed write leaves no temporary behind.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
