"""The exported graph's inputs and outputs: the contract between the exporter and
every backend that serves a graph, so both sides read it from one place."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

INPUT_NAME = "image"
# Every name an exported graph may carry, in graph output order.
OUTPUT_NAMES = ("prob", "logits", "feat", "recon")


def graph_io(dims: Sequence[object]) -> Tuple[Tuple[int, int, int], Optional[int]]:
    """((C, H, W), fixed batch or None) from an NCHW input shape whose entries
    are ints, or names / None / -1 for dynamic axes."""
    if len(dims) != 4:
        raise ValueError(f"expected an NCHW image input, got shape {list(dims)}")

    def static(d: object) -> Optional[int]:
        return d if isinstance(d, int) and d > 0 else None

    chw = [static(d) for d in dims[1:]]
    if None in chw:
        raise ValueError(f"only the batch axis may be dynamic, got shape {list(dims)}")
    return (chw[0], chw[1], chw[2]), static(dims[0])  # type: ignore[return-value]
