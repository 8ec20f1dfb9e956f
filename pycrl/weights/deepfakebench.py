"""Import DeepfakeBench detector checkpoints (``torch.save(model.state_dict())``
from its Trainer, optionally with DDP's ``module.`` prefix) into pycrl models.

Each detector has a prefix key map (DeepfakeBench -> pycrl, first match wins;
``None`` = saved by DeepfakeBench but never used by its forward pass). The
import is as strict as DeepfakeBench's own ``load_state_dict(strict=True)``:
every key it saves, used or not, must be present with the right shape, and
nothing else may be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch.nn as nn

from pycrl.checkpoint import (
    CheckpointError,
    Source,
    assert_materialised,
    build_on_meta,
    inspect_checkpoint,
    raise_if_mismatch,
    read_state_dict,
)
from pycrl.models import create_model
from pycrl.models.xception import DEEPFAKEBENCH_KEYMAP, Xception

Rules = Sequence[Tuple[str, Optional[str]]]
Shapes = Dict[str, tuple]


def _shapes(module: nn.Module, prefix: str = "") -> Shapes:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def dfb_xception_shapes(num_classes: int = 2) -> Shapes:
    """Keys and shapes of DeepfakeBench's ``Xception`` backbone (mode "original"):
    pycrl's Xception renamed by DEEPFAKEBENCH_KEYMAP, plus ``adjust_channel``."""
    feats = _shapes(build_on_meta(Xception, num_classes=num_classes))
    to_dfb = {dst: src for src, dst in DEEPFAKEBENCH_KEYMAP if dst is not None}
    out: Shapes = {}
    for key, shape in feats.items():
        for dst, src in to_dfb.items():
            if key.startswith(dst):
                key = src + key[len(dst):]
                break
        out[key] = shape
    adjust = build_on_meta(lambda: nn.Sequential(nn.Conv2d(2048, 512, 1), nn.BatchNorm2d(512)))
    out.update(_shapes(adjust, "adjust_channel."))
    return out


def _prefixed(shapes: Shapes, prefix: str) -> Shapes:
    return {prefix + k: v for k, v in shapes.items()}


class Layout:
    """How one DeepfakeBench detector's keys map onto a pycrl model."""

    def __init__(self, model: str, rules: Rules, unused: Callable[[], Shapes] = dict):
        self.model = model
        self.rules = tuple(rules)
        self.unused = unused  # shapes of the keys mapped to None

    def to_pycrl(self, key: str) -> Optional[str]:
        for src, dst in self.rules:
            if key.startswith(src):
                return None if dst is None else dst + key[len(src):]
        raise KeyError(key)

    def to_dfb(self, key: str) -> str:
        # the most specific (longest) pycrl prefix wins, e.g. "encoder." over ""
        for src, dst in sorted(((s, d) for s, d in self.rules if d is not None),
                               key=lambda r: len(r[1]), reverse=True):
            if key.startswith(dst):
                return src + key[len(dst):]
        raise KeyError(key)

    def expected_shapes(self, model: nn.Module) -> Shapes:
        expected = {self.to_dfb(k): s for k, s in _shapes(model).items()}
        expected.update(self.unused())
        return expected


def _xception_layout(head: str) -> Layout:
    return Layout(
        "xception",
        [(head, "head."), ("backbone.adjust_channel.", None), ("backbone.", "backbone.")],
        lambda: {k: v for k, v in _prefixed(dfb_xception_shapes(2), "backbone.").items()
                 if k.startswith("backbone.adjust_channel.")})


# DeepfakeBench's Xception with ``dropout`` set saves its head as
# ``last_linear = Sequential(Dropout, Linear)``: the Linear's keys gain a ``.1``.
_XCEPTION_DROPOUT_HEAD = "backbone.last_linear.1."

LAYOUTS: Dict[str, Layout] = {
    "xception": _xception_layout("backbone.last_linear."),
    "efficientnetb4": Layout(
        "efficientnetb4",
        [("backbone.efficientnet.", "backbone."), ("backbone.last_layer.", "head.")]),
    # recce holds two Xceptions: DeepfakeBench's (backbone.*, never run) and
    # timm's (model.encoder.*, used except its ImageNet fc).
    "recce": Layout(
        "recce",
        [("backbone.", None), ("model.encoder.fc.", None), ("model.encoder.", "encoder."),
         ("model.fc.", "head."), ("model.", "")],
        lambda: {**_prefixed(dfb_xception_shapes(2), "backbone."),
                 "model.encoder.fc.weight": (1000, 2048), "model.encoder.fc.bias": (1000,)}),
}


def import_deepfakebench(path_or_state_dict: Source, detector: str = "recce",
                         **cfg) -> nn.Module:
    """Build the pycrl ``detector`` and load a DeepfakeBench checkpoint into it.

    Accepts a ``.pth`` written by ``torch.save`` (read with weights_only=True;
    no pickled code ever runs), a safetensors file, or an in-memory state dict.
    Raises CheckpointError naming every missing, unexpected and wrongly shaped
    key. ``cfg`` goes to the pycrl constructor (e.g. ``num_classes``).
    Returns the model in eval mode.
    """
    if detector not in LAYOUTS:
        raise ValueError(f"unknown DeepfakeBench detector {detector!r}; "
                         f"supported: {sorted(LAYOUTS)}")
    layout = LAYOUTS[detector]
    in_memory = isinstance(path_or_state_dict, Mapping)
    # A file's keys and shapes come from its header before any tensor is read: a checkpoint
    # of another model is refused without loading it (and one too large, as read_state_dict does).
    state: Mapping = (read_state_dict(path_or_state_dict) if isinstance(path_or_state_dict, Mapping)
                      else inspect_checkpoint(path_or_state_dict))
    if detector == "xception" and any(k.startswith(_XCEPTION_DROPOUT_HEAD) for k in state):
        layout = _xception_layout(_XCEPTION_DROPOUT_HEAD)
    model = build_on_meta(create_model, layout.model, **cfg)
    source = "DeepfakeBench checkpoint" + ("" if in_memory else f" {path_or_state_dict}")
    expected = layout.expected_shapes(model)
    raise_if_mismatch(state, expected, source, f"DeepfakeBench detector {detector!r}")
    if not in_memory:
        state = read_state_dict(path_or_state_dict, expected=expected)

    own = model.state_dict()
    mapped = {}
    for key, tensor in state.items():
        new = layout.to_pycrl(key)
        if new is not None:
            # copy in-memory tensors so the model never aliases the caller's dict
            mapped[new] = tensor.to(own[new].dtype, copy=in_memory)
    model.load_state_dict(mapped, strict=True, assign=True)
    assert_materialised(model)
    # torch types Module.__setattr__ for tensors and modules; this is a plain attribute
    model.pycrl_provenance = {  # type: ignore[assignment]
        "source": "deepfakebench",
        "detector": detector,
        "checkpoint": None if in_memory else str(path_or_state_dict),
        "dropped_keys": sum(1 for k in state if layout.to_pycrl(k) is None),
    }
    return model.eval()


__all__ = ["import_deepfakebench", "LAYOUTS", "Layout", "dfb_xception_shapes", "CheckpointError"]
