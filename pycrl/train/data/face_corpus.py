"""The real-face corpus written by ``pycrl train build-faces``, as frame records.

One record per aligned crop, with its 68-point landmarks; the video id is the person's
identity, so identity swaps can pick a donor of another person and per-person metrics
group that person's photos.
"""

from __future__ import annotations

from pathlib import Path

from pycrl.train.corpus.build import read_manifest
from pycrl.train.data.base import FrameDataset, FrameRecord
from pycrl.train.data.errors import DatasetNotFoundError, EmptySplitError

SPLITS = ("train", "val", "all")


class FaceCorpusDataset(FrameDataset):
    """Real crops of one split (``"all"`` for both) of a corpus folder; other keyword
    arguments go to :class:`FrameDataset`."""

    def __init__(self, root: str | Path, split: str = "train", **kwargs):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        try:
            rows = read_manifest(root, None if split == "all" else split)
        except FileNotFoundError as exc:
            raise DatasetNotFoundError(str(exc)) from None
        if not rows:
            raise EmptySplitError(f"{root}: no face in split {split!r}")
        records = [FrameRecord(path=r["crop"], label=0, video_id=r["identity"], landmark_path=r["landmarks"])
                   for r in rows]
        super().__init__(records, name=f"{root}:{split}", **kwargs)
