"""JSON Lines run log and the progress bar."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path


def json_safe(value):
    """nan/inf are not JSON: an undefined metric (one class only) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class JsonlLog:
    """One JSON object per line: ``{"event": ..., "time": unix seconds, ...}``; appends, so a
    resumed run continues the same file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields) -> None:
        record = {"event": event, "time": round(time.time(), 3), **json_safe(fields)}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_log(path: str | Path, event: str | None = None) -> list[dict]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if event is None or r["event"] == event]


def progress_bar(total: int, initial: int, enabled: bool, desc: str):
    """A tqdm bar on stderr (a no-op stand-in when disabled)."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
