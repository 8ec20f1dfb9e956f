"""Write a synthetic dataset in the DeepfakeBench layout (and optionally plain-folder MP4 clips).

Layout under ``out`` (``out`` is the ``rgb_dir``; ``name`` defaults to ``Synthetic``)::

    <name>/real/frames/<id>/<idx:03d>.png            real faces; landmarks/<id>/<idx>.npy beside
    <name>/FakeSBI/frames/<id>/<idx>.png             self-blended fakes of the same identity; masks/, landmarks/
    <name>/FakeSwap/frames/<tgt>_<src>/<idx>.png     face swaps within the split; masks/, landmarks/
    dataset_json/<name>.json                         {name: {label_key: {split: {video: {label, frames, masks}}}}}
    videos/<split>/{real,fake}/*.mp4                 with videos=True: whole clips, plain folder layout
    meta.json                                        what was generated, and how

Each identity is one real video; identities are split pycrl/train/val/test, so val and test
identities never appear in training (swap partners are taken from the same split, or for
a split of one identity from a donor identity used nowhere else). Frame
names are clip indices spread with linspace, as DeepfakeBench preprocessing names them.
The same seed gives the same PNG bytes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pycrl.train.data.face_swap import swap_face
from pycrl.train.data.sampling import linspace_indices
from pycrl.train.data.seeding import rng_for
from pycrl.train.data.self_blend import self_blend
from pycrl.train.data.synthetic import SyntheticFaces

SPLIT_NAMES = ("train", "val", "test")
KINDS = {"real": "real", "sbi": "FakeSBI", "swap": "FakeSwap"}  # kind -> folder and label-key suffix


@dataclass(frozen=True)
class SyntheticSpec:
    out: str
    identities: int
    frames_per_id: int
    seed: int = 0
    val_identities: int | None = None  # default: 10 % (at least 1 from 3 identities on)
    test_identities: int | None = None
    name: str = "Synthetic"
    clip_frames: int | None = None  # frames of each notional clip; default 4 x frames_per_id
    videos: bool = False
    fps: int = 25

    def label_key(self, kind: str) -> str:
        return f"{self.name}_{KINDS[kind]}"

    @property
    def clip_length(self) -> int:
        return self.clip_frames or 4 * self.frames_per_id


def split_identities(n: int, val: int | None = None, test: int | None = None) -> dict[str, list[int]]:
    """Identity ids per split: train first, then val, then test (contiguous, stable under a seed)."""
    default = max(1, round(0.1 * n)) if n >= 3 else 0
    val = default if val is None else val
    test = default if test is None else test
    if min(n, val, test) < 0 or n - val - test < 1:
        raise ValueError(f"{n} identities cannot hold {val} val + {test} test identities and still train")
    train = n - val - test
    ids = list(range(n))
    return {"train": ids[:train], "val": ids[train:train + val], "test": ids[train + val:]}


def _write_png(path: Path, rgb_or_grey: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = cv2.cvtColor(rgb_or_grey, cv2.COLOR_RGB2BGR) if rgb_or_grey.ndim == 3 else rgb_or_grey
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def _render_identity(spec: SyntheticSpec, identity: int, partner: int, split: str) -> list[tuple]:
    """Render and write every frame of one identity's videos; returns JSON entries."""
    from pycrl.train.data.video import write_video

    gen = SyntheticFaces(spec.seed)
    out = Path(spec.out)
    keep = set(linspace_indices(spec.clip_length, spec.frames_per_id))
    times = range(spec.clip_length) if spec.videos else sorted(keep)
    names = {"real": f"{identity:03d}", "sbi": f"{identity:03d}", "swap": f"{identity:03d}_{partner:03d}"}
    entries: dict[str, dict[str, Any]] = {kind: {"label": spec.label_key(kind), "frames": [], "masks": []}
                                          for kind in names}
    clips: dict[str, list[np.ndarray]] = {kind: [] for kind in names}
    for t in times:
        real, lm = gen.frame(identity, t)
        src, src_lm = gen.frame(partner, t)
        frames = {"real": (real, None), "sbi": self_blend(real, lm, rng_for(spec.seed, "sbi", identity, t)),
                  "swap": swap_face(real, lm, src, src_lm, rng_for(spec.seed, "swap", identity, t))}
        for kind, (img, mask) in frames.items():
            if spec.videos:
                clips[kind].append(img)
            if t not in keep:
                continue
            rel = f"{spec.name}/{KINDS[kind]}/frames/{names[kind]}/{t:03d}.png"
            _write_png(out / rel, img)
            lm_path = out / rel.replace("/frames/", "/landmarks/").replace(".png", ".npy")
            lm_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(lm_path, lm.astype(np.float32))
            entries[kind]["frames"].append(rel)
            if mask is not None:
                mask_rel = rel.replace("/frames/", "/masks/")
                _write_png(out / mask_rel, np.rint(mask * 255).astype(np.uint8))
                entries[kind]["masks"].append(mask_rel)
    for kind, clip in clips.items():
        if clip:
            sub = "real" if kind == "real" else "fake"
            stem = names[kind] if kind == "real" else f"{kind}_{names[kind]}"
            write_video(out / "videos" / split / sub / f"{stem}.mp4", clip, fps=spec.fps)
    for e in entries.values():
        if not e["masks"]:
            del e["masks"]
    return [(kind, split, names[kind], e) for kind, e in entries.items()]


def _job(args: tuple) -> list[tuple]:
    return _render_identity(*args)


def write_synthetic_dataset(spec: SyntheticSpec, workers: int = 1, overwrite: bool = False,
                            progress: Callable | None = None) -> dict:
    """Generate the dataset described by ``spec``; returns a summary (paths and counts).

    ``progress``: a tqdm-like factory ``progress(total=...)`` with ``update``/``close``, or None.
    """
    if spec.identities < 1 or spec.frames_per_id < 1:
        raise ValueError("identities and frames_per_id must be at least 1")
    if any(w in spec.name.lower() for w in ("real", "fake")) or "/" in spec.name or "\\" in spec.name:
        # loaders label keys by name ('<name>_real' -> 0, '<name>_FakeSBI' -> 1): keep that unambiguous
        raise ValueError(f"dataset name {spec.name!r} must not contain 'real', 'fake' or a path separator")
    if spec.clip_length < spec.frames_per_id:
        raise ValueError(f"clip_frames ({spec.clip_length}) must be at least frames_per_id ({spec.frames_per_id})")
    out = Path(spec.out)
    splits = split_identities(spec.identities, spec.val_identities, spec.test_identities)
    targets = [out / spec.name, out / "dataset_json" / f"{spec.name}.json", out / "videos", out / "meta.json"]
    if any(p.exists() for p in targets):
        if not overwrite:
            raise FileExistsError(f"{out} already holds a {spec.name} dataset; pass overwrite=True (--overwrite)")
        for p in targets:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    tasks = []
    for split, ids in splits.items():
        for pos, i in enumerate(ids):
            # a lone identity swaps with a donor used nowhere else, so every split has swaps
            partner = ids[(pos + 1) % len(ids)] if len(ids) > 1 else spec.identities + SPLIT_NAMES.index(split)
            tasks.append((spec, i, partner, split))

    bar = progress(total=len(tasks)) if progress else None
    results: list[tuple] = []
    if workers > 1:
        with get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            for res in pool.imap_unordered(_job, tasks):
                results += res
                if bar:
                    bar.update(1)
    else:
        for task in tasks:
            results += _job(task)
            if bar:
                bar.update(1)
    if bar:
        bar.close()

    table: dict[str, dict[str, dict]] = {spec.label_key(k): {s: {} for s in SPLIT_NAMES} for k in KINDS}
    for kind, split, video, entry in sorted(results, key=lambda r: (r[1], r[2])):
        table[spec.label_key(kind)][split][video] = entry
    json_path = out / "dataset_json" / f"{spec.name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({spec.name: table}, indent=1) + "\n", encoding="utf-8")
    counts = {key: {s: len(v) for s, v in per_split.items()} for key, per_split in table.items()}
    summary = {"rgb_dir": str(out), "json": str(json_path), "dataset": spec.name,
               "splits": splits, "videos_per_label": counts,
               "frames": sum(len(e["frames"]) for r in results for e in [r[3]]),
               "video_dir": str(out / "videos") if spec.videos else None}
    (out / "meta.json").write_text(json.dumps({"spec": asdict(spec), **summary}, indent=1) + "\n", encoding="utf-8")
    return summary
