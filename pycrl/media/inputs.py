"""Input lists: what ``pycrl score`` (and every other entry point) accepts as inputs.

Files as given, folders walked recursively for media files, globs expanded, and ``@FILE``
listings. The library owns this so that the CLI, the Ray job and the service expand inputs
the same way.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

#: Suffixes a folder walk picks up (a file named explicitly is kept whatever its suffix).
MEDIA_SUFFIXES = frozenset({
    ".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp",
    ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif",
})


def expand_inputs(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Files as given, folders walked recursively for media files, globs expanded.

    Returns (inputs, patterns that matched nothing). A named file is kept even
    when it does not exist or has an odd suffix: it then gets an error result.
    """
    found: list[str] = []
    unmatched: list[str] = []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            hits = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES)
        elif any(ch in pat for ch in "*?["):
            hits = sorted(h for h in glob.glob(pat, recursive=True) if Path(h).is_file())
        else:
            hits = [pat]
        if not hits:
            unmatched.append(pat)
        found.extend(hits)
    return found, unmatched


def collect_inputs(items: Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """Expand ``items`` into absolute input paths, each once, in order.

    Each item is what `expand_inputs` accepts or ``@FILE``: a text file naming one such item
    per line (blank lines and lines starting with ``#`` ignored; relative entries are relative
    to the current directory, like arguments). Paths are made absolute because Ray workers do
    not share the caller's working directory, and because the absolute path is the key that
    resume matches on. Returns ``(paths, items that matched nothing)``.
    """
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
