"""Finding a model folder and reading its model.json (format-checked, no torch).

`pycrl.model_card.ModelCard` turns the document into typed, bounded fields; this module only
locates folders ("default" or a path) and checks the file's format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pycrl.errors import ModelFolderError

ASSETS = Path(__file__).resolve().parent / "assets"
JSON_NAME = "model.json"
FORMAT = "pycrl-model"
FORMAT_VERSION = 1
#: The bundled model ``pycrl score`` and ``pycrl.Detector()`` use unless told otherwise.
DEFAULT_MODEL = "default"
NAMED_MODELS = {DEFAULT_MODEL: ASSETS / "default"}


def resolve(model: str | os.PathLike[str]) -> Path:
    """A named model ("default") or a folder path, as an existing model folder."""
    folder = NAMED_MODELS.get(str(model), Path(model))
    if not (folder / JSON_NAME).is_file():
        known = ", ".join(NAMED_MODELS)
        raise ModelFolderError(f"{model}: not a pycrl model folder (no model.json); use a folder or one of: {known}")
    return folder


def read_json(folder: str | os.PathLike[str]) -> dict[str, Any]:
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
