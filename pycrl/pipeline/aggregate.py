"""Aggregate stage: scored faces -> per-frame scores -> the input's score and label."""

from __future__ import annotations

import numpy as np

from pycrl.pipeline.item import Item
from pycrl.pipeline.score import Scores
from pycrl.results import FaceScore, Result, aggregate


def frame_scores(faces: list[FaceScore]) -> list[float]:
    """One score per sampled frame, in first-seen order: with several faces in a frame, the
    frame counts as its most suspicious face."""
    per_frame: dict[int, float] = {}
    for face in faces:
        per_frame[face.frame_index] = max(per_frame.get(face.frame_index, 0.0), face.score)
    return list(per_frame.values())


class Aggregate:
    """Fills each face's score in and turns an item into its `Result`."""

    def __init__(self, *, how: str, threshold: float, model: str, backend: str):
        aggregate([0.0], how)  # validates the name now, not on the first input
        self.how, self.threshold, self.model, self.backend = how, threshold, model, backend

    def base(self, item: Item) -> dict:
        """The fields every result of this pipeline carries."""
        return dict(source=item.source, threshold=self.threshold, aggregation=self.how,
                    frames_sampled=item.frames_sampled, model=self.model, backend=self.backend,
                    timings=item.timings)

    def failure(self, item: Item, err: BaseException) -> Result:
        return Result.failure(err, **self.base(item))

    def no_face(self, item: Item) -> Result:
        return Result(status="no_face", message="no face found in the sampled frames", **self.base(item))

    def __call__(self, item: Item, scores: Scores) -> Result:
        for i, face in enumerate(item.faces):
            face.score = float(scores.prob[i])
            if scores.compactness is not None:
                face.compactness = float(scores.compactness[i])
            if scores.heatmap is not None:
                face.heatmap = scores.heatmap[i]
        score = aggregate(frame_scores(item.faces), self.how)
        dists = [f.compactness for f in item.faces if f.compactness is not None]
        return Result(status="ok", score=score, label="fake" if score >= self.threshold else "real",
                      compactness=float(np.mean(dists)) if dists else None, faces=item.faces,
                      **self.base(item))
