"""Evenly spaced frame choice, as DeepfakeBench preprocessing does."""

from __future__ import annotations

import numpy as np


def linspace_indices(total: int, count: int | None) -> list[int]:
    """``count`` indices spread evenly over ``range(total)``, first and last included.

    Same rule as DeepfakeBench's ``np.linspace(0, total - 1, count, dtype=int)``; all
    indices when ``count`` is None or not smaller than ``total``. Indices are distinct
    because the step is at least 1.
    """
    if total <= 0:
        return []
    if count is None or count >= total:
        return list(range(total))
    if count <= 0:
        raise ValueError(f"frame count must be positive, got {count}")
    return [int(i) for i in np.linspace(0, total - 1, count, dtype=int)]
