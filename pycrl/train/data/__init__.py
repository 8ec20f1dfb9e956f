"""Datasets and data generation for training and evaluation.

Names resolve lazily, so ``pycrl train make-synthetic`` does not pay for importing torch.

- :class:`DeepfakeBenchDataset` — DeepfakeBench JSON layout; :class:`FolderDataset` — real/ and fake/ folders;
- :class:`ForgeryDataset` — reals plus on-the-fly fakes (self-blends, identity swaps, upsampling
  artefacts); :func:`self_blend` — one self-blended fake;
- :class:`FaceCorpusDataset` — the real-face corpus of ``pycrl train build-faces``;
- :func:`build_augmentation` — DeepfakeBench's training augmentation (albumentations);
- :class:`SyntheticFaces` and :func:`write_synthetic_dataset` — procedural faces and the make-synthetic writer.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FrameDataset": "base", "FrameRecord": "base",
    "DeepfakeBenchDataset": "deepfakebench", "FolderDataset": "folder", "ForgeryDataset": "forgeries",
    "FaceCorpusDataset": "face_corpus", "upsample_artefact": "forgeries",
    "AugmentConfig": "augment", "build_augmentation": "augment",
    "SelfBlendConfig": "self_blend", "self_blend": "self_blend", "swap_face": "face_swap",
    "MaskConfig": "blending", "face_hull": "blending", "hull_mask": "blending",
    "SyntheticFaces": "synthetic", "SyntheticSpec": "synthetic_writer", "write_synthetic_dataset": "synthetic_writer",
    "default_landmarks": "face_template", "linspace_indices": "sampling",
    "DEFAULT_LABEL_DICT": "labels", "resolve_label": "labels",
    "DatasetError": "errors", "DatasetLayoutError": "errors", "DatasetNotFoundError": "errors",
    "EmptySplitError": "errors", "FrameReadError": "errors", "MissingFramesError": "errors",
    "UnknownLabelError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
