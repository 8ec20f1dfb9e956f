"""`Item`: one input on its way through the stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pycrl.provenance import Credentials
from pycrl.results import FaceScore


@dataclass
class Item:
    """An input after decode and face alignment, then after scoring.

    ``faces[i]`` describes ``crops[i]``; its score is filled in by the score stage. ``error``
    holds what stopped the input, so one bad input becomes an error record, never an exception
    that loses the others.
    """

    source: str
    crops: list[np.ndarray] = field(default_factory=list)
    faces: list[FaceScore] = field(default_factory=list)
    frames_sampled: int = 0
    frame_indices: list[int] = field(default_factory=list)  # of every sampled frame, faces or not
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    error: BaseException | None = None
    credentials: Credentials | None = None  # the input's C2PA manifest, when read

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds
