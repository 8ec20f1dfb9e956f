"""Finding dlib's landmark model file without downloading anything."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["LANDMARKS_ENV", "LandmarkModelNotFoundError", "find_landmark_model"]

#: Environment variable naming a landmark model file (5, 68 or 81 points).
LANDMARKS_ENV = "PYCRL_LANDMARK_MODEL"
_FILE = "shape_predictor_5_face_landmarks.dat"
_DEBIAN = Path("/usr/share/dlib") / _FILE  # Debian's libdlib-data


class LandmarkModelNotFoundError(FileNotFoundError):
    """No landmark model file where pycrl looks; the message says how to get one."""


def _packaged() -> Path | None:
    # find_spec locates the package without importing it: its __init__
    # imports pkg_resources, which recent setuptools no longer ships.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models" / _FILE


def find_landmark_model(path: str | os.PathLike | None = None) -> Path:
    """The landmark model to load: ``path``, else $PYCRL_LANDMARK_MODEL, else the
    5-point model from the ``face-recognition-models`` package, else Debian's copy."""
    explicit = path or os.environ.get(LANDMARKS_ENV)
    candidates = [Path(explicit)] if explicit else [p for p in (_packaged(), _DEBIAN) if p is not None]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    raise LandmarkModelNotFoundError(
        f"no dlib landmark model found (looked in: {looked}). Install one with "
        f"`pip install face-recognition-models` (5-point model, {_FILE}) or "
        f"`apt-get install libdlib-data`, or point {LANDMARKS_ENV} at a .dat file."
    )
