"""Result records: one per input (image or video), JSON-ready.

A failed input is a result with ``status="error"`` (or ``"no_face"``), never an
exception that loses the other items of a batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["ok", "no_face", "error"]


@dataclass
class FaceScore:
    """One scored face crop."""

    frame_index: int  # index in the decoded stream (0 for an image)
    timestamp: float  # seconds from the start (0.0 for an image)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
    score: float  # fake probability
    compactness: float | None = None  # distance to the nearest real prototype (larger = less real-like)


@dataclass
class Result:
    """The verdict on one input."""

    source: str
    status: Status
    score: float | None = None  # aggregated fake probability
    label: Literal["real", "fake"] | None = None  # score against the model's threshold
    threshold: float | None = None
    aggregation: str = "mean"
    compactness: float | None = None  # mean distance of the scored faces to the real centre
    frames_sampled: int = 0
    faces: list[FaceScore] = field(default_factory=list)
    message: str | None = None  # why status is not "ok"
    error_type: str | None = None  # exception class for status "error"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    model: str | None = None
    backend: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        # JSON has no NaN: undefined numbers become null.
        for key in ("score", "compactness", "threshold"):
            if isinstance(d[key], float) and math.isnan(d[key]):
                d[key] = None
        return d

    @classmethod
    def failure(cls, source: str, err: BaseException, **kw) -> "Result":
        return cls(source=str(source), status="error", message=str(err) or type(err).__name__,
                   error_type=type(err).__name__, **kw)


def aggregate(scores: list[float], how: str = "mean", k: int = 5) -> float:
    """Video score from frame scores: ``mean`` (the DeepfakeBench protocol), ``max`` or ``topk-mean``."""
    if not scores:
        raise ValueError("aggregate: no scores")
    if how == "mean":
        return float(sum(scores) / len(scores))
    if how == "max":
        return float(max(scores))
    if how == "topk-mean":
        top = sorted(scores, reverse=True)[: max(1, k)]
        return float(sum(top) / len(top))
    raise ValueError(f"aggregation: expected 'mean', 'max' or 'topk-mean', got {how!r}")
