"""Reading a model folder for inference without torch: model.json and the
few tensors inference needs (the real-feature centre), via safetensors' numpy API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pycrl.errors import ModelFolderError

ASSETS = Path(__file__).resolve().parent / "assets"
JSON_NAME = "model.json"
FORMAT = "pycrl-model"
FORMAT_VERSION = 1
#: The bundled model ``pycrl score`` and ``pycrl.Detector()`` use unless told otherwise.
DEFAULT_MODEL = "default"
NAMED_MODELS = {DEFAULT_MODEL: ASSETS / "default"}


def resolve(model: str | Path) -> Path:
    """A named model ("default") or a folder path, as an existing model folder."""
    folder = NAMED_MODELS.get(str(model), Path(model))
    if not (folder / JSON_NAME).is_file():
        known = ", ".join(NAMED_MODELS)
        raise ModelFolderError(f"{model}: not a pycrl model folder (no model.json); use a folder or one of: {known}")
    return folder


def read_json(folder: str | Path) -> dict[str, Any]:
    """The parsed, format-checked ``model.json`` of a model folder (no torch needed)."""
    path = Path(folder) / JSON_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a pycrl model folder (no {JSON_NAME})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFolderError(f"{path}: format {found!r}, expected {FORMAT!r}")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format_version {doc['format_version']} is newer than this pycrl "
                               f"understands ({FORMAT_VERSION})")
    if "architecture" not in doc:
        raise ModelFolderError(f"{path}: no 'architecture' entry")
    return doc


def real_centre(folder: Path) -> np.ndarray | None:
    """The stored centre of real-face embeddings (a buffer named ``*real_centre``), if the model has one."""
    path = folder / "model.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        keys = [k for k in f.keys() if k.endswith("real_centre")]
        if not keys:
            return None
        centre = np.asarray(f.get_tensor(keys[0]), dtype=np.float32).reshape(-1)
    return centre if np.isfinite(centre).all() and np.abs(centre).sum() > 0 else None
