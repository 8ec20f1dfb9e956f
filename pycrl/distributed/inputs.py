"""The input list of a job: files, folders, globs and ``@list`` files, as absolute paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def collect_inputs(items: Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """Expand ``items`` into absolute input paths, each once, in order.

    Each item is what ``pycrl score`` accepts (a file, a folder searched
    recursively for media files, a glob) or ``@FILE``: a text file naming one
    such item per line (blank lines and lines starting with ``#`` ignored;
    relative entries are relative to the current directory, like arguments).
    Paths are made absolute because Ray workers do not share the caller's
    working directory, and because the absolute path is the key that resume
    matches on. Returns ``(paths, items that matched nothing)``.
    """
    from pycrl.cli import expand_inputs

    found: list[str] = []
    unmatched: list[str] = []
    for item in items:
        item = os.fspath(item)
        if item.startswith("@"):
            listing = Path(item[1:])
            if not listing.is_file():
                raise FileNotFoundError(f"input list {listing} does not exist")
            entries = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines()]
            entries = [e for e in entries if e and not e.startswith("#")]
            if not entries:
                unmatched.append(item)
        else:
            entries = [item]
        hits, missing = expand_inputs(entries)
        found.extend(hits)
        unmatched.extend(missing)
    unique = dict.fromkeys(os.path.abspath(p) for p in found)  # ordered set
    return list(unique), unmatched
