"""Training on real faces only: every real frame also yields a self-blended fake, made on the fly."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from train.data.base import FrameDataset
from train.data.errors import EmptySplitError
from train.data.face_template import default_landmarks
from train.data.self_blend import SelfBlendConfig, self_blend

FAKE_SUFFIX = "#sbi"


class SelfBlendDataset(Dataset):
    """Real frames of ``base`` and one self-blended fake per real frame (balanced classes).

    Index ``i < n`` is real frame ``i``; index ``n + i`` is a fake made from real frame ``i``,
    fresh every epoch (see :meth:`set_epoch`). Fakes are labelled 1, their video id is the
    real one plus ``#sbi`` so video metrics keep them apart, and every sample carries
    ``mask`` (zeros for reals, the blend mask for fakes). Frames without landmarks use the
    default template for aligned crops. The base's augmentation and normalisation apply
    after blending, to image and mask together.
    """

    def __init__(self, base: FrameDataset, config: SelfBlendConfig = SelfBlendConfig()):
        self.base = base
        self.config = config
        self.reals = [i for i, r in enumerate(base.records) if r.label == 0]
        if not self.reals:
            raise EmptySplitError("SelfBlendDataset needs real frames (label 0); the base dataset has none")

    def __len__(self) -> int:
        return 2 * len(self.reals)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    @property
    def labels(self) -> np.ndarray:
        return np.repeat(np.array([0, 1], dtype=np.int64), len(self.reals))

    def __getitem__(self, index: int) -> dict:
        n = len(self.reals)
        if not 0 <= index < 2 * n:
            raise IndexError(index)
        fake = index >= n
        src = self.reals[index - n if fake else index]
        record = self.base.records[src]
        image, hw = self.base.load_rgb(src)
        landmarks = self.base.load_landmarks(src, hw)
        rng = self.base.sample_rng(index, "self-blend")
        if fake:
            if landmarks is None:
                landmarks = default_landmarks(*image.shape[:2])
            image, mask = self_blend(image, landmarks, rng, self.config)
            return self.base.make_sample(image, 1, record.video_id + FAKE_SUFFIX, record.frame_path, rng, mask)
        mask = np.zeros(image.shape[:2], np.float32)
        return self.base.make_sample(image, 0, record.video_id, record.frame_path, rng, mask)
