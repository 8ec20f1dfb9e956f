"""The plain folder layout: ``<root>/real/`` and ``<root>/fake/`` holding images or videos.

- a video file is one video: ``frames_per_video`` frames sampled with linspace, decoded by PyAV;
- images inside a sub-folder (``real/clip7/000.png``) are the frames of one video, sampled the same way;
- an image directly under ``real/`` or ``fake/`` is a video of its own.

Video ids are paths relative to the root (``fake/clip7``, ``real/a.mp4``), so equal names
in real/ and fake/ never merge. An optional ``<stem>.npy`` beside an image holds its landmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pycrl.train.data.base import FrameDataset, FrameRecord
from pycrl.train.data.errors import DatasetLayoutError, DatasetNotFoundError, EmptySplitError
from pycrl.train.data.images import IMAGE_EXTENSIONS
from pycrl.train.data.sampling import linspace_indices
from pycrl.train.data.video import VIDEO_EXTENSIONS, count_frames

CLASS_DIRS: Mapping[str, int] = {"real": 0, "fake": 1}


def _frame_key(path: Path) -> tuple[int, str]:
    return (int(path.stem), path.name) if path.stem.isdigit() else (1 << 62, path.name)


def _class_records(root: Path, folder: Path, label: int, frames_per_video: int | None) -> list[FrameRecord]:
    records: list[FrameRecord] = []
    groups: dict[Path, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix in VIDEO_EXTENSIONS:
            vid = path.relative_to(root).as_posix()
            for i in linspace_indices(count_frames(path), frames_per_video):
                records.append(FrameRecord(path=str(path), label=label, video_id=vid, frame_index=i))
        elif suffix in IMAGE_EXTENSIONS:
            groups.setdefault(path.parent, []).append(path)
    for parent, images in groups.items():
        if parent == folder:  # loose images: one video each
            chosen = [[img] for img in images]
        else:
            ordered = sorted(images, key=_frame_key)
            chosen = [[ordered[i] for i in linspace_indices(len(ordered), frames_per_video)]]
        for group in chosen:
            vid = (group[0] if parent == folder else parent).relative_to(root).as_posix()
            for img in group:
                lm = img.with_suffix(".npy")
                records.append(FrameRecord(path=str(img), label=label, video_id=vid,
                                           landmark_path=str(lm) if lm.is_file() else None))
    return records


class FolderDataset(FrameDataset):
    """Frames of ``<root>/real`` (label 0) and ``<root>/fake`` (label 1).

    frames_per_video: frames kept per video file or frame folder (linspace); None keeps all.
    class_dirs: sub-folder name -> label, for other names. A missing class folder is allowed
    (a real-only set for self-blending), but at least one must exist and hold files.
    Other keyword arguments go to :class:`FrameDataset`.
    """

    def __init__(self, root: str | Path, *, frames_per_video: int | None = 32,
                 class_dirs: Mapping[str, int] = CLASS_DIRS, **kwargs):
        root = Path(root)
        if not root.is_dir():
            raise DatasetNotFoundError(f"dataset folder not found: {root}")
        present = {name: label for name, label in class_dirs.items() if (root / name).is_dir()}
        if not present:
            raise DatasetLayoutError(
                f"{root} has none of the class folders {sorted(class_dirs)}; expected {root}/real/ and "
                f"{root}/fake/ holding images, frame folders or videos")
        records = []
        for name, label in present.items():
            records += _class_records(root, root / name, int(label), frames_per_video)
        if not records:
            raise EmptySplitError(
                f"{root}: no image ({', '.join(IMAGE_EXTENSIONS)}) or video ({', '.join(VIDEO_EXTENSIONS)}) "
                f"under {', '.join(present)}")
        super().__init__(records, name=str(root), **kwargs)
