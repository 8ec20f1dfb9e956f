"""``export_onnx``: the ONNX graph of a model, stored next to its folder and
reused only while its content key matches.

The freshness check reads ``model.json`` and hashes ``model.safetensors``
without importing torch, so inference from a folder whose ``model.onnx`` is
current needs no torch at all; only a stale or missing graph is (re)traced
by :mod:`pycrl.export.onnx_trace`.

The record (``model.onnx.json``) also holds the sha256 of the graph file as
written, checked on every reuse: the key says which graph the folder needs,
the digest that the file on disk is still that graph (not one copied over it,
nor a damaged copy). It detects replacement, it does not authenticate: whoever
can write the graph can write its record too.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pycrl.errors import ExportError, ModelFolderError
from pycrl.fileio import atomic_write_json, read_regular
from pycrl.model_card import ModelCard
from pycrl.model_folder import parse_json

from .digest import export_key, file_digest, file_sha256, safetensors_digest

PathLike = Union[str, "os.PathLike[str]"]

ONNX_NAME = "model.onnx"
SIDECAR_SUFFIX = ".json"  # model.onnx.json: key, graph digest and I/O description
MAX_SIDECAR_BYTES = 1 << 20
DEFAULT_INPUT = (3, 256, 256)


@dataclass(frozen=True)
class OnnxExport:
    """An exported graph on disk. Usable wherever a path is (``os.fspath``)."""

    path: Path
    key: str                                       # content key (weights, config, options, code)
    input_shape: Optional[Tuple[int, int, int]]    # None for a bare .onnx given as-is
    outputs: Optional[Tuple[str, ...]]
    rebuilt: bool = False                          # traced by this call, not reused

    def __fspath__(self) -> str:
        return str(self.path)


def cache_root() -> Path:
    """Where artefacts go when a model folder is read-only: $PYCRL_CACHE_DIR,
    else $XDG_CACHE_HOME/pycrl, else ~/.cache/pycrl."""
    env = os.environ.get("PYCRL_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pycrl"


def writable_dir(*candidates: Path) -> Path:
    """The first folder that exists or can be made, and is writable (a model
    folder shipped read-only falls through to the user cache)."""
    for d in candidates:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return d
    raise PermissionError("none of these folders is writable: "
                          + ", ".join(str(d) for d in candidates))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _record(path: Path) -> Optional[Dict[str, Any]]:
    """The export record next to ``path``; None when absent or malformed (a new export
    replaces it). A record that is a FIFO or device is refused, never opened."""
    side = _sidecar(path)
    if not os.path.lexists(side):
        return None
    data = read_regular(side, MAX_SIDECAR_BYTES, ModelFolderError)
    try:
        doc = parse_json(side, data)
    except ModelFolderError:
        return None
    return doc if isinstance(doc, dict) else None


def _recorded_io(doc: Dict[str, Any]) -> Optional[Tuple[Tuple[int, int, int], Tuple[str, ...]]]:
    shape, outputs = doc.get("input_shape"), doc.get("outputs")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(d) is int for d in shape)
            and isinstance(outputs, list) and all(isinstance(o, str) for o in outputs)):
        return None
    return (shape[0], shape[1], shape[2]), tuple(outputs)


def _fresh(path: Path, key: str, replaced: List[str]) -> Optional[OnnxExport]:
    """The graph at ``path`` if its record has ``key`` and its file still has the recorded
    sha256. A graph that differs from its digest (replaced or damaged after export) or has
    none (recorded by an older pycrl) is not fresh: the caller exports it again. Mismatches
    are appended to ``replaced`` so that the re-export can say why."""
    doc = _record(path)
    if doc is None or doc.get("key") != key or not os.path.lexists(path):
        return None
    io = _recorded_io(doc)
    if io is None:
        return None
    recorded, actual = doc.get("sha256"), file_sha256(path)
    if recorded != actual:
        if recorded is not None:
            replaced.append(f"{path} (sha256 {actual[:12]}..., recorded {str(recorded)[:12]}...)")
        return None
    return OnnxExport(path, key, *io)


def _input_shape(explicit: Optional[Sequence[int]],
                 meta: Optional[Dict[str, Any]]) -> Tuple[int, int, int]:
    shape = explicit or (meta or {}).get("input_size") or DEFAULT_INPUT
    if len(shape) != 3:
        raise ValueError(f"input size must be (C, H, W), got {shape}")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def export_onnx(model_or_folder: Any, path: Optional[PathLike] = None, opset: int = 17,
                batch_dynamic: bool = True, *, outputs: Optional[Sequence[str]] = None,
                input_size: Optional[Sequence[int]] = None, force: bool = False) -> OnnxExport:
    """Export a detector (a model folder, or a torch module) to ONNX.

    The graph takes ``image`` (B, C, H, W) float32 and returns the named
    outputs ``prob`` (B,), ``logits`` (B, 2), ``feat`` (B, D) and, when the
    model reconstructs, ``recon`` (B, 3, H, W); a model narrows them with an
    ``export_outputs`` attribute, a caller with ``outputs``. Shapes are static
    except the batch (dynamic unless ``batch_dynamic=False``, then 1).

    ``path`` defaults to ``<folder>/model.onnx`` (or the user cache when the
    folder is read-only; for a module, always the cache). An existing graph
    whose key matches is returned as is (``rebuilt=False``) unless ``force``.
    """
    requested = tuple(outputs) if outputs is not None else None
    options: Dict[str, Any] = dict(opset=opset, batch_dynamic=batch_dynamic, outputs=requested)
    module = None
    if isinstance(model_or_folder, (str, os.PathLike)):
        card = ModelCard.read(model_or_folder)
        if not card.tensors.exists():
            raise ModelFolderError(f"{card.tensors}: missing (the weights file of {card.folder})")
        shape = _input_shape(input_size, {"input_size": card.input_size})
        key = export_key(architecture=card.architecture, config=card.config,
                         input_shape=shape, weights=safetensors_digest(card.tensors), **options)
        places = [Path(path)] if path is not None else [card.folder / ONNX_NAME]
    else:
        from .onnx_trace import describe_module

        module = model_or_folder
        architecture, config, meta, weights = describe_module(module)
        shape = _input_shape(input_size, meta)
        key = export_key(architecture=architecture, config=config, input_shape=shape,
                         weights=weights, **options)
        places = [Path(path)] if path is not None else []
    if path is None:
        places.append(cache_root() / "onnx" / key / ONNX_NAME)

    replaced: List[str] = []
    if not force:
        for place in places:
            found = _fresh(place, key, replaced)
            if found is not None:
                return found

    try:
        from .onnx_trace import load_folder, trace_to_onnx
    except ImportError as err:  # no torch: an inference-only install
        existing = next((p for p in places if os.path.lexists(p)), None)
        if existing is None:
            raise ExportError(f"{model_or_folder}: no ONNX graph, and exporting one needs torch "
                              f"(pip install 'pycrl[train]'; then: pycrl export FOLDER): {err}") from err
        return _unverified(existing, key, shape)

    folder_out = writable_dir(*(p.parent for p in places))
    place = next(p for p in places if p.parent == folder_out)
    if replaced:
        warnings.warn(f"not the graph exported for this model: {'; '.join(replaced)}; exporting it again",
                      RuntimeWarning, stacklevel=2)
    if module is None:
        module = load_folder(card.folder)
    # A reader must never pair the new graph with an old record.
    _sidecar(place).unlink(missing_ok=True)
    served = trace_to_onnx(module, place, input_shape=shape, key=key, **options)
    record = {"key": key, "input_shape": list(shape), "outputs": list(served),
              "opset": opset, "batch_dynamic": batch_dynamic, "sha256": file_sha256(place)}
    atomic_write_json(_sidecar(place), record)
    return OnnxExport(place, key, shape, served, rebuilt=True)


def _unverified(existing: Path, key: str, shape: Tuple[int, int, int]) -> OnnxExport:
    """The graph an install without torch runs when none matches the key: the existing one,
    if it is still the file its record describes.

    With torch, a graph that differs from its recorded digest is exported again (see `_fresh`):
    the key says exactly which graph the folder needs and torch rebuilds it from the folder.
    Without torch nothing can rebuild it, and running it would score uploads with an unknown
    network under this model's name, so it is refused; a graph merely exported by other pycrl
    code or options (its digest intact) is still the best this install can run, with a warning."""
    doc = _record(existing) or {}
    recorded, actual = doc.get("sha256"), file_sha256(existing)
    if recorded is not None and recorded != actual:
        raise ModelFolderError(
            f"{existing}: not the graph exported for this model: its sha256 {actual[:12]}... differs "
            f"from {str(recorded)[:12]}... recorded in {_sidecar(existing).name} (replaced or damaged "
            f"after export); restore it, or re-export with torch installed: pycrl export FOLDER")
    if doc.get("key") == key:  # current, from a pycrl that did not record digests yet
        warnings.warn(f"{existing} has no recorded digest (exported by an older pycrl) and torch is "
                      f"not installed to re-export it; using it unverified", RuntimeWarning, stacklevel=3)
    else:
        warnings.warn(f"{existing} was exported with a different pycrl version or options and torch "
                      f"is not installed to re-export it; using it as is", RuntimeWarning, stacklevel=3)
    return OnnxExport(existing, key, shape, None, rebuilt=False)


def onnx_for(model: Any) -> OnnxExport:
    """The graph a backend loads: an OnnxExport, a ``.onnx`` file as is, or
    the (cached) export of a model folder or module."""
    if isinstance(model, OnnxExport):
        return model
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".onnx":
        path = Path(model)
        if not path.exists():
            raise FileNotFoundError(path)
        return OnnxExport(path, file_digest(path), None, None)  # file_digest refuses a FIFO or device
    return export_onnx(model)
