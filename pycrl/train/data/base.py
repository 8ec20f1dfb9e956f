"""One frame per sample: records in, dicts of tensors out. Every layout loader builds on this.

A sample is ``{"image": float 3xHxW (normalised), "label": int, "video_id": str,
"frame_path": str}``, plus ``"mask"`` (1xHxW in [0, 1]) and ``"landmark"`` (Nx2) when asked
for. ``video_id`` groups frames for video-level metrics; it must be unique per video across
the whole dataset.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pycrl.train.data.errors import EmptySplitError, MissingFramesError
from pycrl.train.data.images import read_mask, read_rgb, resize_square, to_tensor
from pycrl.train.data.seeding import rng_for
from pycrl.train.data.video import read_frames

Augment = Callable[..., dict]


@dataclass(frozen=True)
class FrameRecord:
    """Where one frame lives: an image file, or frame ``frame_index`` of a video file."""

    path: str
    label: int
    video_id: str
    frame_index: int | None = None
    mask_path: str | None = None
    landmark_path: str | None = None

    @property
    def frame_path(self) -> str:
        return self.path if self.frame_index is None else f"{self.path}#{self.frame_index}"


class _VideoCache:
    """The decoded sampled frames of the last few videos: frames of a video are consecutive
    records, so in-order reading decodes each video once."""

    def __init__(self, size: int = 2):
        self.size = size
        self._videos: OrderedDict[str, dict[int, np.ndarray]] = OrderedDict()

    def frame(self, path: str, index: int, wanted: Sequence[int]) -> np.ndarray:
        if path not in self._videos:
            self._videos[path] = read_frames(path, wanted)
            while len(self._videos) > self.size:
                self._videos.popitem(last=False)
        self._videos.move_to_end(path)
        frames = self._videos[path]
        if index not in frames:
            raise MissingFramesError(f"frame {index} could not be decoded from {path} ({len(frames)} decoded)")
        return frames[index]


class FrameDataset(Dataset):
    """A torch Dataset over :class:`FrameRecord` s.

    resolution: square side frames are resized to (bicubic).
    mean, std: per-channel normalisation of ``x / 255``.
    augment: a callable ``augment(image=, mask=, keypoints=, rng=) -> dict`` (see
        :func:`pycrl.train.data.augment.build_augmentation`); None for none.
    with_mask / with_landmarks: also return ``mask`` / ``landmark``.
    seed: with :meth:`set_epoch` and torch's per-worker seed, fixes every random choice.
    """

    def __init__(self, records: Sequence[FrameRecord], *, resolution: int = 256,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 augment: Augment | None = None, with_mask: bool = False, with_landmarks: bool = False,
                 seed: int = 0, name: str = "dataset"):
        if not records:
            raise EmptySplitError(f"{name}: no frames to load")
        self.records = list(records)
        self.resolution = int(resolution)
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment
        self.with_mask, self.with_landmarks = with_mask, with_landmarks
        self.seed, self.epoch = int(seed), 0
        self._video_frames: dict[str, list[int]] = {}
        for r in self.records:
            if r.frame_index is not None:
                self._video_frames.setdefault(r.path, []).append(r.frame_index)
        self._cache = _VideoCache()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    @property
    def video_ids(self) -> list[str]:
        return [r.video_id for r in self.records]

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream (augmentation, on-the-fly fakes) from one epoch to the next."""
        self.epoch = int(epoch)

    def sample_rng(self, index: int, stream: str = "sample") -> np.random.Generator:
        # torch's initial seed differs per DataLoader worker and per epoch, and is fixed by
        # torch.manual_seed, so runs are reproducible yet workers never repeat each other.
        return rng_for(self.seed, stream, self.epoch, index, torch.initial_seed())

    # -- raw access (uint8, before augmentation), also used by wrappers such as SelfBlendDataset

    def load_rgb(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The frame as RGB uint8 at ``resolution`` and its original (h, w)."""
        r = self.records[index]
        if r.frame_index is None:
            img = read_rgb(r.path)
        else:
            img = self._cache.frame(r.path, r.frame_index, self._video_frames[r.path])
        return resize_square(img, self.resolution), img.shape[:2]

    def load_mask(self, index: int) -> np.ndarray:
        r = self.records[index]
        shape = (self.resolution, self.resolution)
        return read_mask(r.mask_path, shape) if r.mask_path else np.zeros(shape, np.float32)

    def load_landmarks(self, index: int, original_hw: tuple[int, int]) -> np.ndarray | None:
        """Landmarks in pixels of the resized frame, or None when the record has none on disk."""
        r = self.records[index]
        if not r.landmark_path or not Path(r.landmark_path).is_file():
            return None
        lm = np.load(r.landmark_path).astype(np.float32).reshape(-1, 2)
        h, w = original_hw
        return lm * np.array([self.resolution / w, self.resolution / h], dtype=np.float32)

    # -- samples

    def make_sample(self, image: np.ndarray, label: int, video_id: str, frame_path: str,
                    rng: np.random.Generator, mask: np.ndarray | None = None,
                    landmarks: np.ndarray | None = None) -> dict:
        """Augment (image, mask and landmarks together) and normalise into the sample dict."""
        if self.augment is not None:
            out = self.augment(image=image, mask=mask, keypoints=landmarks, rng=rng)
            image, mask, landmarks = out["image"], out.get("mask"), out.get("keypoints")
        sample = {"image": to_tensor(image, self.mean, self.std), "label": int(label),
                  "video_id": video_id, "frame_path": frame_path}
        if mask is not None:
            sample["mask"] = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]
        if landmarks is not None:
            sample["landmark"] = torch.from_numpy(np.asarray(landmarks, dtype=np.float32))
        return sample

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        image, hw = self.load_rgb(index)
        mask = self.load_mask(index) if self.with_mask else None
        landmarks = None
        if self.with_landmarks:
            landmarks = self.load_landmarks(index, hw)
            if landmarks is None:
                raise MissingFramesError(f"no landmarks for {r.frame_path} (expected {r.landmark_path})")
        return self.make_sample(image, r.label, r.video_id, r.frame_path, self.sample_rng(index), mask, landmarks)
