"""DeepfakeBench's JSON layout: ``{dataset: {label_key: {split: [compression:] {video: {label, frames}}}}}``.

Frame paths may use '/' or '\\' and be absolute or relative to ``rgb_dir`` (the released
JSONs hold Windows-style relative paths). Each video keeps at most ``frame_num`` frames,
spread evenly with linspace over its frames sorted by index, as preprocessing spaces them
(DeepfakeBench's own loader keeps the first ``frame_num`` instead; that only differs when
more frames were extracted). The video id is ``<label>_<video name>``, as DeepfakeBench
builds it, so that ``000_003`` of two manipulation methods stay two videos.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pycrl.train.data.base import FrameDataset, FrameRecord
from pycrl.train.data.errors import (
    DatasetLayoutError,
    DatasetNotFoundError,
    EmptySplitError,
    MissingFramesError,
)
from pycrl.train.data.labels import resolve_label
from pycrl.train.data.sampling import linspace_indices

# Names whose released JSON has a compression level (c23/c40/raw) under each split.
FF_FAMILY = frozenset({"FaceForensics++", "FF-DF", "FF-F2F", "FF-FS", "FF-NT", "DeepFakeDetection", "FaceShifter"})
COMPRESSIONS = ("c23", "c40", "raw")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class VideoEntry:
    label_key: str
    name: str
    frames: tuple[str, ...]
    masks: tuple[str, ...] | None = None

    @property
    def video_id(self) -> str:
        return f"{self.label_key}_{self.name}"


def parse_dataset_id(dataset_id: str) -> tuple[str, str | None]:
    """``FF-DF_c40`` -> (``FF-DF``, ``c40``): the test-set ids that select a compression."""
    m = re.fullmatch(r"(.+)_(c23|c40|raw)", dataset_id)
    return (m.group(1), m.group(2)) if m else (dataset_id, None)


def load_json(json_path: str | Path, dataset: str | None = None) -> tuple[str, dict]:
    """(dataset name, its label-key dict) from a DeepfakeBench JSON file."""
    path = Path(json_path)
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset JSON not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise DatasetLayoutError(f"{path}: expected {{dataset_name: {{label_key: ...}}}}, got {type(data).__name__}")
    name = dataset or path.stem
    if name not in data:
        if len(data) != 1:
            raise DatasetLayoutError(f"{path}: no top-level key {name!r}; found {sorted(data)}")
        name = next(iter(data))  # a renamed file: its single dataset is the one meant
    if not isinstance(data[name], dict):
        raise DatasetLayoutError(f"{path}: {name!r} must map label keys to splits")
    return name, data[name]


def _is_video_dict(d: object) -> bool:
    return isinstance(d, dict) and all(isinstance(v, dict) and "frames" in v for v in d.values())


def _split_videos(split_dict: dict, compression: str) -> dict | None:
    """The ``{video: info}`` level, descending through the compression level where there is one;
    None when there is a level but not ``compression``.

    FF-family JSONs have the level and others do not; deciding by the structure instead of
    the name also reads renamed or custom files.
    """
    if split_dict and not _is_video_dict(split_dict) and set(split_dict) <= set(COMPRESSIONS):
        return split_dict.get(compression)
    return split_dict


def collect_videos(info: Mapping, dataset: str, split: str, compression: str = "c23") -> list[VideoEntry]:
    """Every video of ``split`` under every label key, in JSON order.

    A label key without the ``compression`` level is skipped with a warning; when no key
    has it, DatasetLayoutError names the levels there are.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    videos, lacking, levels = [], [], set()
    for label_key, splits in info.items():
        if not isinstance(splits, dict):
            raise DatasetLayoutError(f"{dataset}/{label_key}: expected {{split: ...}}, got {type(splits).__name__}")
        split_dict = splits.get(split) or {}
        per_video = _split_videos(split_dict, compression)
        if per_video is None:
            lacking.append(label_key)
            levels |= set(split_dict)
            continue
        if not isinstance(per_video, dict):
            raise DatasetLayoutError(f"{dataset}/{label_key}/{split}: expected {{video: {{label, frames}}}}")
        for name, entry in per_video.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("frames"), list):
                raise DatasetLayoutError(f"{dataset}/{label_key}/{split}/{name}: expected {{'label', 'frames': [...]}}")
            masks = entry.get("masks")
            videos.append(VideoEntry(label_key=str(entry.get("label", label_key)), name=str(name),
                                     frames=tuple(entry["frames"]),
                                     masks=tuple(masks) if isinstance(masks, list) else None))
    if lacking:
        msg = (f"{dataset}/{split}: no compression level {compression!r} under {lacking}; "
               f"available: {sorted(levels)}. Pick one with compression=... or an id like {dataset}_{min(levels)}")
        if not videos:
            raise DatasetLayoutError(msg)
        warnings.warn(msg + " Those label keys are left out.", stacklevel=2)
    return videos


def splits_with_frames(info: Mapping, dataset: str, compression: str = "c23") -> list[str]:
    """The splits that list at least one frame at this compression (for error messages)."""
    found = []
    for split in SPLITS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if any(v.frames for v in collect_videos(info, dataset, split, compression)):
                    found.append(split)
        except DatasetLayoutError:
            pass
    return found


def resolve_frame_path(raw: str, rgb_dir: str | Path) -> Path:
    """A JSON frame path on this machine: either separator, absolute or relative to ``rgb_dir``."""
    posix = raw.replace("\\", "/")
    if PurePosixPath(posix).is_absolute():
        return Path(posix)
    rel = posix[2:] if posix.startswith("./") else posix
    root = Path(rgb_dir)
    candidate = root / rel
    # some JSONs repeat the rgb_dir folder itself ("./datasets\FaceForensics++\..." with rgb_dir=.../datasets)
    first, _, rest = rel.partition("/")
    if not candidate.exists() and rest and first == root.name:
        return root / rest
    return candidate


def _sibling(frame: Path, folder: str, suffix: str | None = None) -> Path | None:
    """``.../frames/<vid>/<idx>.png`` -> ``.../<folder>/<vid>/<idx><suffix>`` (the last 'frames' part);
    None for a path without a 'frames' folder."""
    parts = list(frame.parts)
    if "frames" not in parts:
        return None
    parts[len(parts) - 1 - parts[::-1].index("frames")] = folder
    out = Path(*parts)
    return out.with_suffix(suffix) if suffix else out


def _frame_order(path: str) -> tuple[int, str]:
    stem = PurePosixPath(path.replace("\\", "/")).stem
    return (int(stem), stem) if stem.isdigit() else (1 << 62, stem)


class DeepfakeBenchDataset(FrameDataset):
    """Frames of one split of one DeepfakeBench dataset JSON.

    json_path: ``<dataset_json_folder>/<Name>.json``; or give ``json_folder`` and ``dataset``
        (ids such as ``FF-DF_c40`` select the compression).
    rgb_dir: the folder the JSON's relative frame paths start from.
    split: ``train``, ``val`` or ``test``. compression: FF-family level (``c23`` default).
    frame_num: frames kept per video (linspace); None keeps all.
    label_dict: label key -> 0/1 over DeepfakeBench's defaults; ``infer_labels`` maps other keys
        containing 'real'/'fake' by name, anything else raises UnknownLabelError.
    missing: ``"error"`` (default) raises MissingFramesError; ``"drop"`` drops missing frames.
    Other keyword arguments go to :class:`FrameDataset` (resolution, mean, std, augment, ...).
    """

    def __init__(self, json_path: str | Path | None = None, *, rgb_dir: str | Path, split: str = "test",
                 dataset: str | None = None, json_folder: str | Path | None = None,
                 compression: str | None = None, frame_num: int | None = 32,
                 label_dict: Mapping[str, int] | None = None, infer_labels: bool = True,
                 missing: str = "error", **kwargs):
        if missing not in ("error", "drop"):
            raise ValueError(f"missing must be 'error' or 'drop', got {missing!r}")
        base, id_compression = parse_dataset_id(dataset) if dataset else (None, None)
        if json_path is None:
            if json_folder is None or base is None:
                raise ValueError("give json_path, or json_folder and dataset")
            json_path = Path(json_folder) / f"{base}.json"
        if not Path(rgb_dir).is_dir():
            raise DatasetNotFoundError(f"rgb_dir is not a folder: {rgb_dir}")
        self.compression = compression or id_compression or "c23"
        self.dataset_name, info = load_json(json_path, base)
        self.split = split
        videos = collect_videos(info, self.dataset_name, split, self.compression)
        where = f"{self.dataset_name} split {split!r}" + (
            f" ({self.compression})" if self.dataset_name in FF_FAMILY else "")
        if not any(v.frames for v in videos):
            raise EmptySplitError(f"{where} in {json_path} has no frames; splits with videos: "
                                  f"{splits_with_frames(info, self.dataset_name, self.compression)}")
        records = self._records(videos, rgb_dir, frame_num, label_dict, infer_labels, missing, where)
        super().__init__(records, name=where, **kwargs)

    @staticmethod
    def _records(videos, rgb_dir, frame_num, label_dict, infer_labels, missing, where) -> list[FrameRecord]:
        records, absent = [], []
        for v in videos:
            label = resolve_label(v.label_key, label_dict, infer_labels)
            order = sorted(range(len(v.frames)), key=lambda i: _frame_order(v.frames[i]))
            for k in linspace_indices(len(order), frame_num):
                i = order[k]
                frame = resolve_frame_path(v.frames[i], rgb_dir)
                if not frame.is_file():
                    absent.append(str(frame))
                    continue
                mask = resolve_frame_path(v.masks[i], rgb_dir) if v.masks and i < len(v.masks) \
                    else _sibling(frame, "masks")
                landmarks = _sibling(frame, "landmarks", ".npy")
                records.append(FrameRecord(path=str(frame), label=label, video_id=v.video_id,
                                           mask_path=str(mask) if mask else None,
                                           landmark_path=str(landmarks) if landmarks else None))
        if absent:
            msg = (f"{where}: {len(absent)} listed frame(s) not found, e.g. {absent[:3]}. "
                   f"Is rgb_dir right? It is the folder the JSON's relative paths start from.")
            if missing == "error" or not records:
                raise MissingFramesError(msg)
            warnings.warn(msg + " Dropped them.", stacklevel=3)
        return records
