"""Reading what a destination folder already holds, so that a re-run skips it.

Only finished part files count (see `pycrl.distributed.sink`); temporary files
left by a killed job are deleted. A part that cannot be read (it was copied
half-way, or edited by hand) is renamed aside with a warning, so its inputs
are scored again and nothing reads it twice later.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from pycrl.distributed import records

log = logging.getLogger(__name__)


def part_files(dest: Path) -> list[Path]:
    """Finished part files in ``dest``, oldest run first."""
    dest = Path(dest)
    if not dest.is_dir():
        return []
    return sorted(p for p in dest.iterdir() if p.is_file() and records.is_part(p.name))


def remove_stale_temporaries(dest: Path) -> int:
    """Delete the temporary files of an interrupted job; returns how many. Call under the destination lock."""
    n = 0
    for p in Path(dest).glob(f"{records.TMP_PREFIX}*{records.TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _read_part(path: Path, columns: list[str] | None = None) -> list[dict]:
    if path.suffix == records.SUFFIXES["parquet"]:
        import pyarrow.parquet as pq

        return records.from_table(pq.read_table(path, columns=columns))
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # parts are written whole, so only a hand edit gets here
                log.warning("%s:%d: not a JSON record, ignored", path, n)
    return rows


def _readable_parts(dest: Path, columns: list[str] | None = None, set_aside: bool = False) -> Iterator[list[dict]]:
    for path in part_files(dest):
        try:
            yield _read_part(path, columns)
        except Exception as err:  # noqa: BLE001 - whatever the reader raised, the part is unusable
            if not set_aside:
                log.warning("%s cannot be read (%s: %s); skipped", path, type(err).__name__, err)
                continue
            aside = path.with_name(path.name + ".unreadable")
            log.warning("%s cannot be read (%s: %s); renamed to %s, its inputs will be scored again",
                        path, type(err).__name__, err, aside.name)
            os.replace(path, aside)


def done_sources(dest: Path) -> set[str]:
    """The ``source`` of every record already in ``dest`` (errors included: they are results too).
    Unreadable parts are renamed aside: call this under the destination lock."""
    done: set[str] = set()
    for rows in _readable_parts(dest, columns=["source"], set_aside=True):
        done.update(str(r["source"]) for r in rows if r.get("source") is not None)
    return done


def read_records(dest: str | os.PathLike) -> list[dict]:
    """Every record in a destination folder (both formats), in ``Result.to_dict()`` shape."""
    return [row for rows in _readable_parts(Path(dest)) for row in rows]
