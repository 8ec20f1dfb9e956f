"""Typed dataset errors: each says what was expected, what was found, and what to fix."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every data-loading error in ``pycrl.train.data``."""


class DatasetLayoutError(DatasetError, ValueError):
    """The files exist but are not laid out as the loader expects (bad JSON shape, no real/ or fake/)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file or folder (JSON, rgb_dir, layout root) does not exist."""


class MissingFramesError(DatasetError, FileNotFoundError):
    """Frames listed by the dataset are not on disk."""


class FrameReadError(DatasetError, OSError):
    """A frame or video exists but could not be decoded."""


class EmptySplitError(DatasetError, ValueError):
    """The requested split (or layout) holds no sample."""


class UnknownLabelError(DatasetError, ValueError):
    """A label key has no entry in the label dictionary and its name says neither real nor fake."""

    def __init__(self, key: str, known: list[str]):
        self.key = key
        super().__init__(
            f"unknown label key {key!r}: it is not in label_dict and its name contains neither "
            f"'real' nor 'fake'. Add it to label_dict (0 = real, 1 = fake). Known keys: {', '.join(sorted(known))}"
        )
