"""The inference face of a detector: a module returning the tuple of named
outputs that every backend serves (see ``onnx_io.OUTPUT_NAMES``).

Shared by the ONNX exporter and the torch backend (``pycrl.runtime``) so that
the reference and the exported graph compute exactly the same thing.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .onnx_io import OUTPUT_NAMES

# Detector dict key behind each served name.
_SOURCE_KEY = {"prob": "prob", "logits": "cls", "feat": "feat", "recon": "recon"}


def serve(out: Dict[str, torch.Tensor], name: str) -> torch.Tensor:
    value = out[_SOURCE_KEY[name]]
    if name == "feat" and value.dim() > 2:
        # Classifier detectors report the last feature map; serve the pooled
        # (B, D) embedding that prototype distances use.
        value = value.mean(dim=tuple(range(2, value.dim())))
    return value


def resolve_outputs(model: nn.Module, produced: Sequence[str],
                    requested: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """What to serve: ``requested``, else the model's ``export_outputs``
    (a detector lists there only what its score needs, so unused decoders
    drop out of the graph), else every servable output it produces."""
    chosen = requested if requested is not None else getattr(model, "export_outputs", None)
    available = [n for n in OUTPUT_NAMES if _SOURCE_KEY[n] in produced]
    if chosen is None:
        return tuple(available)
    chosen = tuple(chosen)
    bad = [n for n in chosen if n not in available]
    if bad:
        raise ValueError(f"cannot serve {bad}: {type(model).__name__} serves {available}")
    if "prob" not in chosen:
        raise ValueError("the outputs must include 'prob' (the score)")
    return tuple(n for n in OUTPUT_NAMES if n in chosen)  # canonical order


class InferenceOutputs(nn.Module):
    """``forward(x) -> tuple`` of the chosen outputs, in ``self.outputs`` order."""

    def __init__(self, model: nn.Module, outputs: Sequence[str],
                 sample_shapes: Optional[Dict[str, Tuple[int, ...]]] = None):
        super().__init__()
        self.model = model
        self.outputs = tuple(outputs)
        # Per-sample output shapes seen by the probe (exporters pin them).
        self.sample_shapes = dict(sample_shapes or {})
        self.train(model.training)  # exporters restore this mode afterwards

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(serve(out, n) for n in self.outputs)


def inference_outputs(model: nn.Module, input_shape: Sequence[int],
                      requested: Optional[Sequence[str]] = None) -> InferenceOutputs:
    """Wrap an eval-mode ``model``; a probe forward finds what it produces."""
    if hasattr(model, "inference_module"):
        # a method, but torch types Module.__getattr__ as Tensor | Module
        model = model.inference_module()  # type: ignore[operator]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        probe = model(torch.zeros(2, *input_shape, device=device))
        names = resolve_outputs(model, list(probe), requested)
        shapes = {n: tuple(serve(probe, n).shape[1:]) for n in names}
    return InferenceOutputs(model, names, shapes)
