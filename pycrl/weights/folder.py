"""A model is a folder: ``model.json`` (architecture, config and everything a
user of the scores needs to know) + ``model.safetensors`` (tensors only).

Loading rebuilds the architecture from the registry and reads tensors with
safetensors, so nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch
import torch.nn as nn

import pycrl
from pycrl import model_folder
from pycrl.checkpoint import (
    CheckpointError,
    assert_materialised,
    build_on_meta,
    raise_if_mismatch,
)
from pycrl.fileio import atomic_path, atomic_write, check_regular
from pycrl.model_folder import FORMAT, FORMAT_VERSION, JSON_NAME
from pycrl.models import MODELS, create_model

TENSORS_NAME = "model.safetensors"
_RESERVED = ("format", "format_version", "architecture", "config", "tensors")

PathLike = Union[str, "os.PathLike[str]"]


def _no_pretrained(cfg: Any) -> Any:
    """The folder's tensors replace any pretrained init: never fetch it on load."""
    if isinstance(cfg, dict):
        return {k: (False if k == "pretrained" else _no_pretrained(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [_no_pretrained(v) for v in cfg]
    return cfg


def _deep_merge(base: Dict, extra: Mapping) -> Dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, Mapping) \
            else v
    return out


def save(model: nn.Module, folder: PathLike, meta: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``model`` to ``folder`` (created if needed); returns the folder.

    ``meta`` adds to or overrides the recorded defaults (input_size, mean,
    std, labels, decision_threshold, provenance, ...); any JSON-serialisable
    keys are kept, e.g. how the threshold was chosen or a real-feature centre
    summary. ``provenance`` is merged with what pycrl records itself.
    """
    name = getattr(type(model), "pycrl_name", None)
    if name is None or name not in MODELS or MODELS.get(name) is not type(model):
        raise ValueError(f"{type(model).__name__} is not a registered pycrl model "
                         f"(registered: {MODELS.names()})")
    meta = dict(meta or {})
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"meta may not set {clash}: they describe the stored model itself")

    doc: Dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": name,
        "config": _no_pretrained(copy.deepcopy(getattr(model, "pycrl_config", {}))),
    }
    doc.update(copy.deepcopy(getattr(model, "default_meta", {})))
    doc["provenance"] = _deep_merge(
        {"pycrl_version": pycrl.__version__, "torch_version": torch.__version__,
         "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
         **getattr(model, "pycrl_provenance", {})},
        meta.pop("provenance", {}))
    doc.update(meta)

    state = model.state_dict()
    buffer_names = {k for k, _ in model.named_buffers()}
    doc["tensors"] = {"file": TENSORS_NAME,
                      "buffers": sorted(k for k in state if k in buffer_names)}
    try:
        text = json.dumps(doc, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model config / meta must be JSON-serialisable: {e}") from e

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    with atomic_path(folder / TENSORS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write(folder / JSON_NAME, text + "\n")
    return folder


def read_meta(folder: PathLike) -> Dict[str, Any]:
    """The parsed ``model.json`` of a model folder, format-checked."""
    try:
        return model_folder.read_json(folder)
    except model_folder.ModelFolderError as e:
        raise CheckpointError(str(e)) from e


def _adopt_buffers(model: nn.Module, state: Mapping[str, torch.Tensor], names) -> None:
    """Register stored buffers the freshly built model lacks or sizes differently
    (e.g. a real-feature centre computed after training)."""
    params = {k for k, _ in model.named_parameters()}
    own = model.state_dict()
    for key in names:
        if key in params or key not in state:
            continue
        if key in own and own[key].shape == state[key].shape:
            continue
        owner, _, leaf = key.rpartition(".")
        try:
            module = model.get_submodule(owner)
        except AttributeError as e:
            raise CheckpointError(f"stored buffer {key!r} has no module {owner!r} to live in") \
                from e
        module.register_buffer(leaf, state[key].clone())


def load(folder: PathLike, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild the model stored in ``folder``; returns it in eval mode with the
    parsed ``model.json`` attached as ``model.pycrl_meta``."""
    from safetensors.torch import load_file

    doc = read_meta(folder)
    file_name = doc.get("tensors", {}).get("file", TENSORS_NAME)
    if Path(file_name).name != file_name:  # the tensors live inside the folder
        raise CheckpointError(f"{folder}: tensors file {file_name!r} is not a plain file name")
    tensors_path = Path(folder) / file_name
    check_regular(tensors_path, CheckpointError)  # a FIFO would block load_file's open
    try:  # safetensors only: a model folder is never read with pickle
        state = load_file(str(tensors_path), device="cpu")
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CheckpointError(f"{tensors_path}: unreadable safetensors file "
                              f"({type(e).__name__}: {e})") from e
    model = build_on_meta(create_model, doc["architecture"], **doc.get("config", {}))
    _adopt_buffers(model, state, doc.get("tensors", {}).get("buffers", []))
    own = model.state_dict()
    raise_if_mismatch(state, {k: v.shape for k, v in own.items()}, str(tensors_path),
                      doc["architecture"])
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()},
                          strict=True, assign=True)
    assert_materialised(model, doc["architecture"])
    model.pycrl_meta = doc  # type: ignore[assignment]  # a plain attribute; torch types Module.__setattr__ for tensors
    return model.to(device).eval()
