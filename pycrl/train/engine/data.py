"""Datasets and loaders from the ``data`` section of a config.

A source is one mapping; ``data.train`` may also be a list of them (concatenated):

    {type: deepfakebench, json: J.json, rgb_dir: DIR, split: train, frame_num: 32, compression: c23}
    {type: folder, root: DIR, frames_per_video: 32}          # DIR/real, DIR/fake
    {type: faces, root: DIR, split: train}                   # a build-faces corpus (reals only)
    ... plus self_blend: true (or a mapping of SelfBlendConfig fields, ``mask:`` nested),
    fakes: {sbi: 1, swap: 1, upsample: 0.5} (on-the-fly fake families and their weights;
    self_blend then configures the sbi family and the masks) and repeats: N (each real N times)

``label_keys: [K, ...]`` keeps only the videos under those DeepfakeBench label keys (e.g. the
reals and one manipulation method). ``type`` may be left out: ``json``/``json_folder`` mean
deepfakebench, ``root`` means folder. With ``self_blend`` only the real frames of the source are used, each also giving
an on-the-fly self-blended fake. ``split`` defaults to the section's name.

Order and randomness: the training order of an epoch is a permutation drawn from
(seed, epoch) alone, and every worker is seeded alike, so a sample's augmentation depends
only on (seed, epoch, index). That is what lets a resumed run skip to the middle of an
epoch and see exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

FORGERY_KEYS = {"self_blend", "fakes", "repeats"}
SOURCE_KEYS = {
    "deepfakebench": {"type", "json", "json_folder", "dataset", "rgb_dir", "split", "compression", "frame_num",
                      "label_dict", "infer_labels", "missing", "label_keys"} | FORGERY_KEYS,
    "folder": {"type", "root", "frames_per_video", "class_dirs"} | FORGERY_KEYS,
    "faces": {"type", "root", "split"} | FORGERY_KEYS,
}


def source_type(spec: Mapping) -> str:
    kind = spec.get("type") or ("deepfakebench" if ("json" in spec or "json_folder" in spec)
                                else "folder" if "root" in spec else None)
    if kind not in SOURCE_KEYS:
        raise ValueError(f"data source {dict(spec)}: set type to one of {sorted(SOURCE_KEYS)} "
                         "(or give json: for DeepfakeBench JSON, root: for a real/ fake/ folder)")
    unknown = set(spec) - SOURCE_KEYS[kind]
    if unknown:
        raise ValueError(f"data source of type {kind}: unknown key(s) {sorted(unknown)}; "
                         f"known: {sorted(SOURCE_KEYS[kind])}")
    return kind


def _self_blend_config(value: Any):
    from pycrl.train.data.blending import MaskConfig
    from pycrl.train.data.self_blend import SelfBlendConfig

    def tuples(d: Mapping) -> dict:  # YAML lists -> the dataclasses' tuples
        return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

    if value is True or value is None:
        return SelfBlendConfig()
    fields = tuples(value)
    if "mask" in fields:
        fields["mask"] = MaskConfig(**tuples(fields["mask"]))
    return SelfBlendConfig(**fields)


def build_source(spec: Mapping, split: str, *, resolution: int, mean, std, augment=None, seed: int = 0) -> Dataset:
    """One dataset from one source mapping."""
    from pycrl.train.data import (
        DeepfakeBenchDataset,
        FaceCorpusDataset,
        FolderDataset,
        ForgeryDataset,
    )

    kind = source_type(spec)
    args = {k: v for k, v in spec.items() if k not in FORGERY_KEYS | {"type", "label_keys"}}
    common = dict(resolution=resolution, mean=mean, std=std, augment=augment, seed=seed)
    if kind == "deepfakebench":
        args.setdefault("split", split)
        if "json" in args:
            args["json_path"] = args.pop("json")
        ds = DeepfakeBenchDataset(**args, **common)
        if spec.get("label_keys"):
            keep_label_keys(ds, spec["label_keys"])
    elif kind == "faces":
        args.setdefault("split", split)
        ds = FaceCorpusDataset(args.pop("root"), **args, **common)
    else:
        ds = FolderDataset(args.pop("root"), **args, **common)
    blend, fakes = spec.get("self_blend"), spec.get("fakes")
    if not (blend or fakes):
        return ds
    return ForgeryDataset(ds, fakes or {"sbi": 1.0}, _self_blend_config(blend), int(spec.get("repeats", 1)))


def keep_label_keys(ds, keys) -> None:
    """Drop the frames of videos under other label keys (video ids are ``<label_key>_<video>``)."""
    prefixes = tuple(f"{k}_" for k in keys)
    kept = [r for r in ds.records if r.video_id.startswith(prefixes)]
    if not kept:
        found = sorted({r.video_id.rsplit("_", 1)[0] for r in ds.records})
        raise ValueError(f"label_keys {list(keys)} match no video; label keys look like {found[:8]}")
    ds.records = kept


def build_dataset(data_cfg: Mapping, section: str, train: bool, seed: int) -> Dataset | None:
    """The dataset of ``data.<section>`` (None when the section is not set)."""
    specs = data_cfg.get(section)
    if not specs:
        return None
    augment = None
    if train and data_cfg.get("augmentation"):
        from pycrl.train.data import build_augmentation

        augment = build_augmentation(dict(data_cfg.get("data_aug") or {}), data_cfg["resolution"])
    specs = [specs] if isinstance(specs, Mapping) else list(specs)
    parts = [build_source(s, section, resolution=data_cfg["resolution"], mean=data_cfg["mean"],
                          std=data_cfg["std"], augment=augment, seed=seed) for s in specs]
    if data_cfg.get("cache"):
        parts = [CachedSamples(p) if augment is None and not FORGERY_KEYS & set(s) else p
                 for p, s in zip(parts, specs)]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class CachedSamples(Dataset):
    """Keeps every sample after its first load. Only for sources whose samples never change
    (no augmentation, no self-blending); each DataLoader worker holds its own copy, so it
    pays off most with ``workers: 0`` or over many evaluations."""

    def __init__(self, base: Any):
        self.base = base
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        if index not in self._cache:
            self._cache[index] = self.base[index]
        return self._cache[index]

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    @property
    def labels(self) -> np.ndarray:
        return self.base.labels


def _parts(ds: Dataset) -> list:
    return list(ds.datasets) if isinstance(ds, ConcatDataset) else [ds]


def set_epoch(ds: Any, epoch: int) -> None:
    for part in _parts(ds):
        part.set_epoch(epoch)


def labels_of(ds: Dataset) -> np.ndarray:
    return np.concatenate([np.asarray(part.labels) for part in _parts(ds)])


def describe(ds: Dataset | None, specs: Any) -> dict | None:
    """What a model folder records about a split: its sources and class counts."""
    if ds is None:
        return None
    y = labels_of(ds)
    return {"sources": specs, "frames": int(y.size), "real": int((y == 0).sum()), "fake": int((y == 1).sum())}


def collate(samples: Sequence[Mapping]) -> dict:
    """Images and labels as tensors, ids as lists; other keys (masks, landmarks) are dropped
    because sources differ in having them."""
    return {"image": torch.stack([s["image"] for s in samples]),
            "label": torch.tensor([int(s["label"]) for s in samples], dtype=torch.long),
            "video_id": [s["video_id"] for s in samples],
            "frame_path": [s["frame_path"] for s in samples]}


def mix(*parts: int) -> int:
    """A 63-bit seed from integers (SeedSequence: no collisions between nearby tuples)."""
    lo, hi = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)


class EpochSampler(Sampler):
    """The permutation of epoch ``epoch`` (fixed by seed and epoch), from position ``start``."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0):
        self.n, self.seed, self.epoch, self.start = n, seed, epoch, start

    def __iter__(self):
        g = torch.Generator().manual_seed(mix(self.seed, self.epoch, 1))
        return iter(torch.randperm(self.n, generator=g)[self.start:].tolist())

    def __len__(self) -> int:
        return max(self.n - self.start, 0)


def _seed_worker(seed: int, _worker_id: int) -> None:
    # The same seed in every worker: samples draw their randomness from their index
    # (FrameDataset.sample_rng), so which worker loads a sample must not matter.
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _loader(ds: Dataset, batch_size: int, workers: int, seed: int, **kw) -> DataLoader:
    # An own generator: otherwise every iterator would draw its base seed from the global
    # RNG, and an extra validation would shift dropout noise in the steps after it.
    return DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                      worker_init_fn=partial(_seed_worker, seed), generator=torch.Generator().manual_seed(seed),
                      persistent_workers=False, **kw)


def train_loader(ds: Any, data_cfg: Mapping, seed: int, epoch: int, skip_batches: int = 0) -> DataLoader:
    bs = int(data_cfg["batch_size"])
    sampler = EpochSampler(len(ds), seed, epoch, start=skip_batches * bs)
    # drop_last: BatchNorm in train mode cannot take a batch of one, and equal batches keep
    # the loss scale steady.
    return _loader(ds, bs, int(data_cfg["workers"]), mix(seed, epoch, 2), sampler=sampler, drop_last=True)


def eval_loader(ds: Any, data_cfg: Mapping, seed: int) -> DataLoader:
    return _loader(ds, int(data_cfg["eval_batch_size"]), int(data_cfg["workers"]), mix(seed, 3), shuffle=False)


def steps_per_epoch(ds: Any, data_cfg: Mapping) -> int:
    n = len(ds) // int(data_cfg["batch_size"])
    if n == 0:
        raise ValueError(f"the training set has {len(ds)} samples, fewer than one batch "
                         f"(data.batch_size={data_cfg['batch_size']})")
    return n
