"""Finding a model folder and reading its model.json (format-checked, no torch).

`pycrl.model_card.ModelCard` turns the document into typed, bounded fields; this module only
locates folders ("default" or a path) and checks the file's format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pycrl.errors import ModelFolderError
from pycrl.fileio import read_regular

ASSETS = Path(__file__).resolve().parent / "assets"
JSON_NAME = "model.json"
FORMAT = "pycrl-model"
FORMAT_VERSION = 1
#: The bundled model ``pycrl score`` and ``pycrl.Detector()`` use unless told otherwise.
DEFAULT_MODEL = "default"
NAMED_MODELS = {DEFAULT_MODEL: ASSETS / "default"}
#: A model.json is a few kB (the default's is 18 kB); anything near this is not a card.
MAX_JSON_BYTES = 4 << 20
#: Nesting a card may use. Deeper documents are refused: code that walks a config
#: recursively (export keys, pretrained flags) must never meet a RecursionError.
MAX_JSON_DEPTH = 32


def resolve(model: str | os.PathLike[str]) -> Path:
    """A named model ("default") or a folder path, as an existing model folder."""
    folder = NAMED_MODELS.get(str(model), Path(model))
    # exists(), not is_file(): a model.json that is a FIFO or a folder is refused by read_json
    # with what it is, not mistaken for a missing one
    if not (folder / JSON_NAME).exists():
        known = ", ".join(NAMED_MODELS)
        raise ModelFolderError(f"{model}: not a pycrl model folder (no model.json); use a folder or one of: {known}")
    return folder


def parse_json(path: Path, data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document from a model folder's file, or ModelFolderError naming ``path``: not
    UTF-8, not JSON, or nested deeper than ``max_depth`` (json's own recursion would raise
    RecursionError at ~1000 levels, and shallower nesting still reaches recursive code)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelFolderError(f"{path}: not UTF-8 text (byte {err.start}: {data[err.start:err.start + 1]!r})") \
            from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ModelFolderError(f"{path}: JSON nested too deeply (more than {max_depth} levels)") from None
    except ValueError as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from None
    _check_depth(path, doc, max_depth)
    return doc


def _check_depth(path: Path, doc: Any, max_depth: int) -> None:
    stack = [(doc, 1)]  # iterative: the check itself must not recurse
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > max_depth:
                    raise ModelFolderError(f"{path}: JSON nested too deeply (more than {max_depth} levels)")
                stack.append((child, depth + 1))


def read_json(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed, format-checked ``model.json`` of a model folder (no torch needed)."""
    path = Path(folder) / JSON_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: not a pycrl model folder (no {JSON_NAME})")
    doc = parse_json(path, read_regular(path, MAX_JSON_BYTES, ModelFolderError))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFolderError(f"{path}: format {found!r}, expected {FORMAT!r}")
    version = doc.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFolderError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format_version {version} is newer than this pycrl "
                               f"understands ({FORMAT_VERSION})")
    if "architecture" not in doc:
        raise ModelFolderError(f"{path}: no 'architecture' entry")
    if not isinstance(doc["architecture"], str) or not doc["architecture"]:
        raise ModelFolderError(f"{path}: architecture must be a name, got {doc['architecture']!r}")
    return doc
