"""Training and validation fakes made on the fly from real faces: three families.

* ``sbi`` — self-blended images (SBI, Shiohara & Yamasaki, CVPR 2022): the face blended
  into itself after colour, frequency and geometric jitter (``pycrl.train.data.self_blend``).
* ``swap`` — an identity swap between two *different* people of the pool: the donor face
  aligned on the target's inner landmarks, colour-transferred inside the mask and blended
  with a soft, deformed hull (``pycrl.train.data.face_swap``).
* ``upsample`` — generator-like upsampling artefacts: the face region re-synthesised from a
  2x-4x downscaled copy by nearest, zero-insertion (the checkerboard a transposed
  convolution leaves) or bilinear-plus-sharpening upsampling, then blended back.

``ForgeryDataset`` wraps a dataset of real frames: index ``i < n`` is real frame ``i``;
``n + i`` a fake made from it, of a family drawn by the configured weights. With
``repeats`` each real frame appears that many times (each with its own fake), which makes
validation on a few faces steadier. Fake video ids get ``#<family>`` so video metrics keep
them apart; ``family_of(video_id)`` reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from torch.utils.data import Dataset

from pycrl.train.data.base import FrameDataset
from pycrl.train.data.blending import MaskConfig, alpha_blend, random_blend_mask
from pycrl.train.data.errors import EmptySplitError
from pycrl.train.data.face_swap import swap_face
from pycrl.train.data.face_template import default_landmarks
from pycrl.train.data.self_blend import SelfBlendConfig, self_blend

FAMILIES = ("sbi", "swap", "upsample")


def family_of(video_id: str) -> str | None:
    """The fake family a video id was made with, or None for a real one."""
    tail = video_id.rsplit("#", 1)
    return tail[1] if len(tail) == 2 and tail[1] in FAMILIES else None


def upsample_artefact(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                      mask_config: MaskConfig = MaskConfig()) -> tuple[np.ndarray, np.ndarray]:
    """The face region replaced by an upsampled low-resolution copy; (fake uint8, mask float32)."""
    h, w = image.shape[:2]
    f = int(rng.choice([2, 2, 4]))
    small = cv2.resize(image, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    how = rng.choice(["nearest", "zeros", "bilinear"])
    if how == "nearest":
        up = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    elif how == "zeros":
        # zero insertion and a box kernel that does not tile the stride evenly: the periodic
        # checkerboard a stride-f transposed convolution leaves, at a random amplitude
        grid = np.zeros((h, w, 3), np.float32)
        hits = np.zeros((h, w), np.float32)
        grid[::f, ::f] = small[: (h + f - 1) // f, : (w + f - 1) // f]
        hits[::f, ::f] = 1.0
        k = 2 * f - 1
        density = cv2.blur(hits, (k, k))[..., None]
        up = cv2.blur(grid, (k, k)) / np.maximum(density, 1e-6)
        pattern = density / density.mean() - 1.0
        up = up * (1.0 + rng.uniform(0.04, 0.12) * pattern)
    else:
        up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        soft = cv2.GaussianBlur(up, (0, 0), 1.0)
        up = up + rng.uniform(0.5, 1.5) * (up - soft)
    up = np.clip(up, 0, 255).astype(np.uint8)
    mask = random_blend_mask((h, w), landmarks, rng, mask_config, kinds=("extended", "face"))
    return alpha_blend(image, up, mask), mask


class ForgeryDataset(Dataset):
    """Real frames of ``base`` and one on-the-fly fake per real frame (balanced classes).

    families: family -> weight (``{"sbi": 1}`` is plain self-blending); ``swap`` needs at
    least two identities (video ids) among the reals. Fakes are fresh every epoch (see
    :meth:`set_epoch`) and fixed for a given (seed, epoch, index), so a validation set is
    the same at every evaluation.
    """

    def __init__(self, base: FrameDataset, families: Mapping[str, float] | None = None,
                 sbi: SelfBlendConfig = SelfBlendConfig(), repeats: int = 1):
        families = dict(families or {"sbi": 1.0})
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown fake families {unknown}; choose from {list(FAMILIES)}")
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.base, self.sbi, self.repeats = base, sbi, int(repeats)
        self.families = [k for k, v in families.items() if v > 0]
        weights = np.array([families[k] for k in self.families], dtype=np.float64)
        if not len(weights):
            raise ValueError("fake families: give at least one a positive weight")
        self.weights = weights / weights.sum()
        self.reals = [i for i, r in enumerate(base.records) if r.label == 0]
        if not self.reals:
            raise EmptySplitError("ForgeryDataset needs real frames (label 0); the base dataset has none")
        self._donors: dict[str, list[int]] = {}
        for i in self.reals:
            self._donors.setdefault(base.records[i].video_id, []).append(i)
        if "swap" in self.families and len(self._donors) < 2:
            raise EmptySplitError("identity swaps need real faces of at least two people (video ids)")

    def __len__(self) -> int:
        return 2 * len(self.reals) * self.repeats

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    @property
    def labels(self) -> np.ndarray:
        return np.repeat(np.array([0, 1], dtype=np.int64), len(self.reals) * self.repeats)

    def _landmarks(self, index: int, image: np.ndarray, hw) -> np.ndarray:
        lm = self.base.load_landmarks(index, hw)
        return default_landmarks(*image.shape[:2]) if lm is None else lm

    def _fake(self, family: str, src: int, image: np.ndarray, lm: np.ndarray, rng: np.random.Generator):
        if family == "sbi":
            return self_blend(image, lm, rng, self.sbi)
        if family == "upsample":
            return upsample_artefact(image, lm, rng, self.sbi.mask)
        own = self.base.records[src].video_id
        others = [v for v in self._donors if v != own]
        donor_id = others[int(rng.integers(len(others)))]
        donors = self._donors[donor_id]
        donor = donors[int(rng.integers(len(donors)))]
        d_img, d_hw = self.base.load_rgb(donor)
        return swap_face(image, lm, d_img, self._landmarks(donor, d_img, d_hw), rng, self.sbi.mask)

    def raw(self, index: int) -> dict:
        """Sample ``index`` before augmentation and normalisation: ``image`` (uint8 RGB at the
        base's resolution), ``mask``, ``label``, ``video_id``, ``frame_path``, ``identity``, ``rng``."""
        half = len(self.reals) * self.repeats
        if not 0 <= index < 2 * half:
            raise IndexError(index)
        fake = index >= half
        src = self.reals[(index - half if fake else index) % len(self.reals)]
        record = self.base.records[src]
        image, hw = self.base.load_rgb(src)
        rng = self.base.sample_rng(index, "forgery")
        copy = (index % half) // len(self.reals)
        vid = record.video_id if self.repeats == 1 else f"{record.video_id}~{copy}"
        out = {"label": int(fake), "frame_path": record.frame_path, "identity": record.video_id, "rng": rng}
        if fake:
            family = self.families[int(rng.choice(len(self.families), p=self.weights))]
            out["image"], out["mask"] = self._fake(family, src, image, self._landmarks(src, image, hw), rng)
            out["video_id"] = f"{vid}#{family}"
        else:
            out["image"], out["mask"], out["video_id"] = image, np.zeros(image.shape[:2], np.float32), vid
        return out

    def __getitem__(self, index: int) -> dict:
        r = self.raw(index)
        return self.base.make_sample(r["image"], r["label"], r["video_id"], r["frame_path"], r["rng"], r["mask"])
