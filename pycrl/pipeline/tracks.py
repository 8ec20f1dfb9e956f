"""Linking faces across sampled frames into people (tracks).

Sampled frames may be a third of a second apart, so a face moves between them: a detection
joins the track whose last face it overlaps (box IoU) or whose landmarks it lies near (mean
distance of the five alignment points, relative to the face's size), and a track survives
``max_gap`` sampled frames without a face (a missed detection, a turned head) before it ends.
Matching is greedy by affinity, one detection per track per frame.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pycrl.results import FaceScore

#: Sampled frames a track may miss and still continue.
MAX_GAP = 2
#: A detection continues a track when their boxes overlap at least this much (IoU) ...
MIN_IOU = 0.2
#: ... or when their five points lie within this fraction of the face size of each other.
MAX_POINT_DISTANCE = 0.5


def _iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _point_distance(a: FaceScore, b: FaceScore) -> float:
    """Mean distance of the five points over the face size; boxes' centres when points are absent."""
    size = max(a.box[2] - a.box[0], a.box[3] - a.box[1], b.box[2] - b.box[0], b.box[3] - b.box[1], 1e-6)
    if a.points is not None and b.points is not None:
        d = float(np.linalg.norm(np.asarray(a.points) - np.asarray(b.points), axis=-1).mean())
    else:
        ca = np.array([(a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2])
        cb = np.array([(b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2])
        d = float(np.linalg.norm(ca - cb))
    return d / size


def link(faces: list[FaceScore], sampled: Iterable[int] | None = None, *,
         max_gap: int = MAX_GAP) -> list[list[FaceScore]]:
    """Group faces into tracks and set each face's ``track``; tracks are numbered from 0 in
    order of first appearance, and returned in that order. ``sampled``: the indices of every
    sampled frame, faces or not (gaps are counted in sampled frames); default: the frames
    that have faces."""
    indices = set(sampled or ()) | {f.frame_index for f in faces}
    steps = {index: step for step, index in enumerate(sorted(indices))}
    by_frame: dict[int, list[FaceScore]] = {}
    for face in faces:
        by_frame.setdefault(face.frame_index, []).append(face)
    tracks: list[list[FaceScore]] = []  # a track's id is its position; its last face is what it matches on
    for index in sorted(by_frame):
        step = steps[index]
        live = [tid for tid, t in enumerate(tracks) if step - steps[t[-1].frame_index] <= max_gap + 1]
        pairs = []
        for tid in live:
            last = tracks[tid][-1]
            for j, face in enumerate(by_frame[index]):
                iou, dist = _iou(last.box, face.box), _point_distance(last, face)
                if iou >= MIN_IOU or dist <= MAX_POINT_DISTANCE:
                    pairs.append((iou + max(0.0, 1.0 - dist), tid, j))
        taken_tracks: set[int] = set()
        taken_faces: set[int] = set()
        for _, tid, j in sorted(pairs, reverse=True):
            if tid in taken_tracks or j in taken_faces:
                continue
            taken_tracks.add(tid)
            taken_faces.add(j)
            tracks[tid].append(by_frame[index][j])
        tracks += [[face] for j, face in enumerate(by_frame[index]) if j not in taken_faces]
    for tid, track in enumerate(tracks):
        for face in track:
            face.track = tid
    return tracks
