"""Result records: one per input (image or video), JSON-ready.

A failed input is a result with ``status="error"`` (or ``"no_face"``), never an
exception that loses the other items of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

Status = Literal["ok", "no_face", "error"]


@dataclass
class FaceScore:
    """One scored face crop."""

    frame_index: int  # index in the decoded stream (0 for an image)
    timestamp: float  # seconds from the start (0.0 for an image)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
    score: float  # fake probability
    compactness: float | None = None  # distance to the nearest real prototype (larger = less real-like)
    track: int | None = None  # the person (see `Track`) this face belongs to
    # The five alignment points (eyes, nose, mouth corners) in source pixels, for linking faces.
    points: np.ndarray | None = field(default=None, repr=False, compare=False, metadata={"json": False})
    # Pictures for people, not for JSON: the aligned crop and its reconstruction-difference map.
    crop: np.ndarray | None = field(default=None, repr=False, compare=False, metadata={"json": False})
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False, metadata={"json": False})


@dataclass
class TrackPoint:
    """One face of a person: when, where and how suspicious."""

    frame_index: int
    timestamp: float
    score: float
    box: tuple[float, float, float, float]


@dataclass
class Track:
    """One person, linked across the sampled frames."""

    id: int
    score: float  # the person's score: their faces' scores aggregated as the result's
    label: Literal["real", "fake"]
    faces: int  # faces of this person that were scored
    counted: bool  # whether the track is long enough to decide the video's verdict
    timeline: list[TrackPoint] = field(default_factory=list)


@dataclass
class Result:
    """The verdict on one input."""

    source: str
    status: Status
    score: float | None = None  # aggregated fake probability
    label: Literal["real", "fake"] | None = None  # score against the model's threshold
    threshold: float | None = None
    operating_point: str | None = None  # the name of the point the threshold belongs to ("eer", "fpr=0.01", ...)
    aggregation: str = "mean"
    # How ``score`` was formed: "frames" (the protocol: frame scores aggregated, a frame counting as
    # its most suspicious face) or "person" (the most suspicious person's score: a video is fake if
    # any person in it is).
    score_rule: str = "frames"
    compactness: float | None = None  # mean distance of the scored faces to the real centre
    frames_sampled: int = 0
    faces: list[FaceScore] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)  # people, in order of first appearance
    message: str | None = None  # why status is not "ok"
    notices: list[str] = field(default_factory=list)  # what a reader should know (e.g. a fallback taken)
    # The input's C2PA manifest, read beside the pixels (see pycrl.provenance); None when not read.
    content_credentials: dict | None = None
    error_type: str | None = None  # exception class for status "error"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    model: str | None = None
    backend: str | None = None

    def to_dict(self) -> dict:
        return _json_ready(self)

    @classmethod
    def failure(cls, err: BaseException, **kw) -> "Result":
        """A result with status "error" for ``err``; ``kw`` gives source and the other fields."""
        return cls(status="error", message=str(err) or type(err).__name__, error_type=type(err).__name__, **kw)


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


def _json_ready(obj: Any) -> Any:
    """Dataclasses to dicts without their picture fields; NaN to None (JSON has no NaN)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _json_ready(getattr(obj, f.name)) for f in fields(obj) if f.metadata.get("json", True)}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
