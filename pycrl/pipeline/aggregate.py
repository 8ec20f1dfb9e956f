"""Aggregate stage: scored faces -> people and frames -> the input's score and verdict."""

from __future__ import annotations

import math

import numpy as np

from pycrl.model_card import Decision
from pycrl.pipeline.item import Item
from pycrl.pipeline.score import Scores
from pycrl.pipeline.tracks import link
from pycrl.results import FaceScore, Result, Track, TrackPoint, aggregate

#: A person decides the video's verdict only when seen in at least this fraction of the longest
#: track's faces: a face detected in one frame out of 32 (often a false detection) is reported,
#: but does not outvote the people who are there throughout.
MIN_TRACK_FRACTION = 0.25


def frame_scores(faces: list[FaceScore]) -> list[float]:
    """One score per sampled frame, in first-seen order: with several faces in a frame, the
    frame counts as its most suspicious face."""
    per_frame: dict[int, float] = {}
    for face in faces:
        per_frame[face.frame_index] = max(per_frame.get(face.frame_index, 0.0), face.score)
    return list(per_frame.values())


class Aggregate:
    """Fills each face's score in, links faces into people, and turns an item into its `Result`.

    ``per_person``: the score is the most suspicious person's (``faces="all"``), else the
    protocol's aggregate of frame scores. ``decision``: where scores become labels; `__call__`
    takes another one per input (the service's per-request operating point)."""

    def __init__(self, *, how: str, decision: Decision, model: str, backend: str, per_person: bool = False):
        aggregate([0.0], how)  # validates the name now, not on the first input
        self.how, self.decision, self.model, self.backend = how, decision, model, backend
        self.per_person = per_person

    @property
    def threshold(self) -> float:
        return self.decision.threshold

    def base(self, item: Item, decision: Decision | None = None) -> dict:
        """The fields every result of this pipeline carries."""
        decision = decision or self.decision
        return dict(source=item.source, threshold=decision.threshold, operating_point=decision.point,
                    aggregation=self.how, score_rule="person" if self.per_person else "frames",
                    frames_sampled=item.frames_sampled, model=self.model, backend=self.backend,
                    timings=item.timings, notices=[decision.notice] if decision.notice else [],
                    content_credentials=item.credentials.to_dict() if item.credentials is not None else None)

    def failure(self, item: Item, err: BaseException, decision: Decision | None = None) -> Result:
        return Result.failure(err, **self.base(item, decision))

    def no_face(self, item: Item, decision: Decision | None = None) -> Result:
        return Result(status="no_face", message="no face found in the sampled frames", **self.base(item, decision))

    def __call__(self, item: Item, scores: Scores, decision: Decision | None = None) -> Result:
        decision = decision or self.decision
        for i, face in enumerate(item.faces):
            face.score = float(scores.prob[i])
            if scores.compactness is not None:
                face.compactness = float(scores.compactness[i])
            if scores.heatmap is not None:
                face.heatmap = scores.heatmap[i]
        tracks = self.tracks(item.faces, item.frame_indices, decision)
        if self.per_person:
            score = max(t.score for t in tracks if t.counted)
        else:
            score = aggregate(frame_scores(item.faces), self.how)
        dists = [f.compactness for f in item.faces if f.compactness is not None]
        return Result(status="ok", score=score, label=decision.label(score),
                      compactness=float(np.mean(dists)) if dists else None, faces=item.faces, tracks=tracks,
                      **self.base(item, decision))

    def tracks(self, faces: list[FaceScore], sampled: list[int], decision: Decision) -> list[Track]:
        """The people among ``faces``, each scored by the result's aggregation over its faces."""
        groups = link(faces, sampled)
        longest = max((len(g) for g in groups), default=0)
        needed = max(1, math.ceil(MIN_TRACK_FRACTION * longest))
        out = []
        for tid, group in enumerate(groups):
            score = aggregate([f.score for f in group], self.how)
            out.append(Track(id=tid, score=score, label=decision.label(score), faces=len(group),
                             counted=len(group) >= needed,
                             timeline=[TrackPoint(f.frame_index, f.timestamp, f.score, f.box) for f in group]))
        return out
