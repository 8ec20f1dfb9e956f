"""Reading state dicts without unpickling code, and strict loading with
errors that name every missing/unexpected key and shape mismatch."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from pycrl.errors import ModelError

StateDict = Dict[str, torch.Tensor]
Source = Union[str, "os.PathLike[str]", Mapping]

_SHOW = 12  # keys listed per category in an error message


class CheckpointError(ModelError, ValueError):
    """A checkpoint that cannot be read safely or does not fit the model.

    ``missing``, ``unexpected`` and ``mismatched`` (key, checkpoint shape,
    expected shape) hold the full lists; the message shows the first few.
    """

    def __init__(self, message: str, missing: Iterable[str] = (),
                 unexpected: Iterable[str] = (),
                 mismatched: Iterable[Tuple[str, tuple, tuple]] = ()):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        super().__init__(message)


def _is_safetensors(path: str) -> bool:
    """safetensors files start with a little-endian u64 header size and '{'."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(source: Source, strip_prefix: str = "module.") -> StateDict:
    """A flat ``{key: tensor}`` dict from a file or a mapping.

    Files: safetensors, or anything ``torch.save`` wrote, read with
    ``torch.load(weights_only=True)`` so no code in the file ever runs; a
    pickle that needs more than tensors and containers raises CheckpointError.
    A ``{"state_dict": {...}}`` wrapper is unwrapped and a leading
    ``strip_prefix`` (DistributedDataParallel's ``module.``) is removed when
    every key has it.
    """
    name = "<state dict>"
    if isinstance(source, Mapping):
        state = source
    else:
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(name)
        try:
            if _is_safetensors(name):
                from safetensors.torch import load_file
                state = load_file(name, device="cpu")
            else:
                state = torch.load(name, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            lines = str(e).splitlines() or [""]
            detail = next((ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported" in ln),
                          lines[0])
            raise CheckpointError(
                f"{name}: refused to unpickle: the file holds objects other than tensors "
                f"and plain containers, which are never loaded (weights_only). Re-save it "
                f"as torch.save(model.state_dict()) or safetensors. ({detail})") from e
        except Exception as e:  # corrupt zip, truncated file, bad header, ...
            raise CheckpointError(f"{name}: not a readable checkpoint "
                                  f"({type(e).__name__}: {e})") from e

    if not isinstance(state, Mapping):
        raise CheckpointError(f"{name}: expected a state dict, got {type(state).__name__}")
    if isinstance(state.get("state_dict"), Mapping):  # {"state_dict": ..., extras}
        state = state["state_dict"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{name}: entries that are not tensors: {bad[:_SHOW]}")
    out = dict(state)
    if strip_prefix and out and all(k.startswith(strip_prefix) for k in out):
        out = {k[len(strip_prefix):]: v for k, v in out.items()}
    return out


def compare_shapes(found: Mapping, expected: Mapping) -> Tuple[List[str], List[str], List]:
    """(missing, unexpected, mismatched) between a state dict and expected shapes."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [(k, tuple(found[k].shape), tuple(expected[k])) for k in expected
                  if k in found and tuple(found[k].shape) != tuple(expected[k])]
    return missing, unexpected, mismatched


def raise_if_mismatch(found: Mapping, expected: Mapping, source: str, target: str) -> None:
    missing, unexpected, mismatched = compare_shapes(found, expected)
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected)):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {label}: {items[:_SHOW]}{more}")
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {list(a)} vs expected {list(b)}"
                          for k, a, b in mismatched[:_SHOW])
        parts.append(f"{len(mismatched)} shape mismatches: {shown}")
    raise CheckpointError(f"{source} does not fit {target}: " + "; ".join(parts),
                          missing, unexpected, mismatched)


def check_and_load(model: nn.Module, state: Mapping, source: str = "checkpoint",
                   assign: bool = False) -> nn.Module:
    """Strict load after a key/shape check that reports everything at once.

    ``assign=True`` (for models built on the meta device) adopts the given
    tensors, cast to the dtype of the module's own entries.
    """
    own = model.state_dict()
    raise_if_mismatch(state, {k: v.shape for k, v in own.items()}, source,
                      type(model).__name__)
    if assign:
        state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def build_on_meta(factory, *args, **kwargs) -> nn.Module:
    """Construct a module without allocating or initialising its tensors."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def assert_materialised(model: nn.Module, what: Optional[str] = None) -> None:
    left = [k for k, t in list(model.named_parameters()) + list(model.named_buffers())
            if t.is_meta]
    if left:
        raise CheckpointError(f"{what or type(model).__name__}: no values for {left[:_SHOW]}")
