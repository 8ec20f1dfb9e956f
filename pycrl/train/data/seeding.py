"""Independent, reproducible random streams keyed by (seed, what, which)."""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: int | str) -> int:
    if isinstance(part, str):
        # crc32 rather than hash(): str hashes change between interpreter runs.
        return zlib.crc32(part.encode("utf-8"))
    return int(part) & 0xFFFFFFFFFFFFFFFF


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys``, never on call order."""
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(k) for k in keys)]))
