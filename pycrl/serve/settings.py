"""`ServeSettings`: every setting of the service, with its default, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pycrl.errors import OptionError
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.options import ScoringOptions

MIB = 1 << 20
#: Environment variable holding API keys (comma-separated), read when no key file is given.
KEYS_ENV = "PYCRL_API_KEYS"


@dataclass(frozen=True)
class ServeSettings:
    """How the service runs. The scoring options are fixed at start-up (one loaded pipeline);
    a request may choose only its operating point or threshold."""

    model: str = DEFAULT_MODEL
    options: ScoringOptions = field(default_factory=ScoringOptions)
    #: threads scoring requests; they share the one loaded model
    workers: int = 2
    #: requests admitted beyond those being scored; past it the service answers 429
    queue_size: int = 16
    #: the largest upload accepted at all (413 above it, before the body is read)
    max_upload_bytes: int = 512 * MIB
    #: the largest upload ``POST /v1/score`` answers synchronously; larger ones go to /v1/jobs
    sync_max_bytes: int = 64 * MIB
    #: seconds a finished job's result is kept
    job_ttl_s: float = 3600.0
    #: the most jobs remembered at once (the oldest finished ones are forgotten first)
    max_jobs: int = 10_000
    #: server-local inputs are read only below this folder (None: refused)
    allowed_root: Path | None = None
    #: accepted API keys (empty: no authentication)
    api_keys: frozenset[str] = frozenset()
    #: seconds a client is told to wait after a 429
    retry_after_s: int = 2
    #: seconds an upload may take to arrive (408 after): a client trickling bytes cannot hold a
    #: receiving slot for ever
    upload_timeout_s: float = 300.0
    #: seconds shutdown waits for requests being scored before failing them
    shutdown_grace_s: float = 30.0
    #: where uploads are spooled while scored (None: the system's temporary folder)
    upload_dir: Path | None = None

    def __post_init__(self) -> None:
        for name, low in (("workers", 1), ("queue_size", 1), ("max_upload_bytes", 1), ("sync_max_bytes", 1),
                          ("max_jobs", 1), ("retry_after_s", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise OptionError(f"{name}: expected an integer >= {low}, got {value!r}")
        for name in ("job_ttl_s", "upload_timeout_s", "shutdown_grace_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise OptionError(f"{name}: expected a positive number of seconds, got {value!r}")
        if self.sync_max_bytes > self.max_upload_bytes:
            object.__setattr__(self, "sync_max_bytes", self.max_upload_bytes)
        if self.allowed_root is not None:
            root = Path(self.allowed_root)
            if not root.is_dir():
                raise OptionError(f"allowed_root: {root} is not a folder")
            object.__setattr__(self, "allowed_root", root.resolve())


def read_api_keys(path: str | os.PathLike | None) -> frozenset[str]:
    """Keys from a file (one per line, ``#`` comments), else from ``$PYCRL_API_KEYS``."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = os.environ.get(KEYS_ENV, "").replace(",", "\n")
    keys = frozenset(k.strip() for k in text.splitlines() if k.strip() and not k.strip().startswith("#"))
    short = [k for k in keys if len(k) < 16]
    if short:
        raise OptionError(f"API keys must be at least 16 characters ({len(short)} shorter)")
    return keys
