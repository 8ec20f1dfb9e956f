"""Writing records into the destination folder so that a killed job loses little and corrupts nothing.

Records are buffered and written as numbered part files. Each part is written
under a hidden temporary name, flushed to disk and then renamed, which POSIX
makes atomic: a part either exists whole (and counts as done on resume) or
not at all. What a kill loses is the unflushed buffer, bounded by
``flush_records`` and ``flush_seconds``; those inputs are simply scored again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from pycrl.distributed import records
from pycrl.fileio import atomic_path, atomic_write_json

LOCK_NAME = ".pycrl-ray.lock"


class DestinationBusy(RuntimeError):
    """Another job is writing into the same destination folder."""


class DestinationLock:
    """An exclusive advisory lock on the destination, held for the whole job:
    two jobs appending to one folder would each miss the other's records on
    resume and score those inputs twice."""

    def __init__(self, dest: Path) -> None:
        self.path = Path(dest) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> DestinationLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DestinationBusy(f"{self.path.parent} is in use by another pycrl job (lock {self.path})") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


class PartWriter:
    """Buffers JSON records and writes them out as atomic part files."""

    def __init__(self, dest: Path, output_format: str, flush_records: int = 64, flush_seconds: float = 10.0) -> None:
        if flush_records < 1 or flush_seconds <= 0:
            raise ValueError("flush_records must be >= 1 and flush_seconds > 0")
        self.dest = Path(dest)
        self.format = records.check_format(output_format)
        self.flush_records, self.flush_seconds = flush_records, flush_seconds
        # Sortable by time, unique per run: parts of different runs never collide.
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.parts_written = 0
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()

    def add(self, record_json: str) -> None:
        self._buffer.append(record_json)
        if len(self._buffer) >= self.flush_records or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        name = f"{records.PART_PREFIX}{self.run_id}-{self.parts_written:06d}{records.SUFFIXES[self.format]}"
        tmp = self.dest / f"{records.TMP_PREFIX}{name}{records.TMP_SUFFIX}"  # resume clears leftovers
        with atomic_path(self.dest / name, tmp=tmp, durable=True) as part:
            if self.format == "jsonl":
                part.write_bytes(("\n".join(self._buffer) + "\n").encode("utf-8"))
            else:
                import pyarrow.parquet as pq  # Ray's dependency, only for parquet parts

                pq.write_table(records.to_table([json.loads(r) for r in self._buffer]), str(part))
        self.parts_written += 1
        self._buffer.clear()

    def close(self) -> None:
        self.flush()


def write_json_atomically(path: Path, obj) -> None:
    atomic_write_json(path, obj, tmp=path.with_name(records.TMP_PREFIX + path.name + records.TMP_SUFFIX))
