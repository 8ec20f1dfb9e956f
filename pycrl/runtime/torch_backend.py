"""Eager torch: the exactness reference, and the backend of last resort.

The only backend that imports torch; it serves the same named outputs as the
exported graph by running the very wrapper the exporter traces.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pycrl import environment
from pycrl.export.onnx_cache import DEFAULT_INPUT, OnnxExport
from pycrl.model_card import ModelCard

from .errors import BackendUnavailable
from .interface import BaseBackend, Outputs


class TorchBackend(BaseBackend):
    name = "torch"

    def __init__(self, model: Any, *, threads: Optional[int] = None, precision: str = "auto",
                 device: Optional[str] = None):
        self._require(environment.torch_backend(), precision)
        if isinstance(model, OnnxExport) or (
                isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".onnx"):
            raise BackendUnavailable(self.name, "needs a model folder or module, not an ONNX graph")
        import torch

        from pycrl.export.inference_outputs import inference_outputs

        if threads:
            torch.set_num_threads(int(threads))  # process-wide: torch has no per-module setting
        self._torch = torch
        self._device = torch.device(device or "cpu")
        if isinstance(model, (str, os.PathLike)):
            from pycrl.weights import load

            shape = ModelCard.read(model).input_size
            module = load(model, device=self._device)
        else:
            meta = getattr(model, "pycrl_meta", None) or getattr(model, "default_meta", {})
            shape = meta.get("input_size", DEFAULT_INPUT)
            module = model.to(self._device).eval()
        self.input_shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self._head = inference_outputs(module, self.input_shape)
        self.output_names = self._head.outputs
        self.device = f"{self._device} (f32)"

    def _infer(self, batch: np.ndarray) -> Outputs:
        # An eval-mode forward under inference_mode changes no module state (no batch-norm
        # statistics, no autograd graph): concurrent calls are safe without a lock.
        x = self._torch.from_numpy(batch).to(self._device)
        with self._torch.inference_mode():
            out = self._head(x)
        return {n: t.float().cpu().numpy() for n, t in zip(self.output_names, out)}

    def _release(self) -> None:
        del self._head
