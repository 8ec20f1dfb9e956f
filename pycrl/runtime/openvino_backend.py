"""OpenVINO: the default CPU backend. Compiles the exported ONNX directly;
bf16 where the CPU has native support (AVX-512 BF16 / AMX), f32 on request."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from pycrl import environment
from pycrl.export.onnx_cache import cache_root, onnx_for, writable_dir
from pycrl.export.onnx_io import graph_io

from .errors import BackendUnavailable
from .interface import BaseBackend, Outputs, owned

# pycrl precision name -> OpenVINO element type name, and the device capability it needs.
_PRECISIONS = {"f32": ("f32", "FP32"), "bf16": ("bf16", "BF16"), "fp16": ("f16", "FP16")}


def choose_precision(requested: str, device: str, capabilities: Sequence[str]) -> str:
    """The OpenVINO inference precision for ``requested`` on ``device``, or
    BackendUnavailable when the device lacks it."""
    if requested == "auto":
        if "BF16" in capabilities:
            return "bf16"
        # A GPU runs half precision natively; a CPU without bf16 stays exact.
        return "f16" if not device.upper().startswith("CPU") and "FP16" in capabilities else "f32"
    if requested not in _PRECISIONS:
        raise ValueError(f"precision must be auto, {', '.join(_PRECISIONS)}; got {requested!r}")
    element, capability = _PRECISIONS[requested]
    if capability not in capabilities and requested != "f32":
        raise BackendUnavailable("openvino", f"{device} has no native {requested} "
                                 f"(OPTIMIZATION_CAPABILITIES: {', '.join(capabilities)})")
    return element


class OpenVINOBackend(BaseBackend):
    name = "openvino"

    def __init__(self, model: Any, *, threads: Optional[int] = None, precision: str = "auto",
                 device: Optional[str] = None):
        self._require(environment.openvino_backend(), precision, precisions=None)
        import openvino as ov

        core = ov.Core()
        dev = device or "CPU"
        families = {d.split(".")[0] for d in core.available_devices}
        if dev.split(".")[0] not in families:
            raise BackendUnavailable(self.name, f"no OpenVINO device {dev!r} "
                                     f"(available: {', '.join(core.available_devices)})")
        capabilities = list(core.get_property(dev, "OPTIMIZATION_CAPABILITIES"))
        self.precision = choose_precision(precision, dev, capabilities)

        graph = onnx_for(model)
        config: Dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": self.precision,
            # One request runs the whole batch on every core; THROUGHPUT would
            # split the cores into streams that a single request leaves idle.
            "PERFORMANCE_HINT": "LATENCY",
            "CACHE_DIR": str(_blob_dir(graph.path, graph.key)),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled = core.compile_model(str(graph.path), dev, config)
        self._request = self._compiled.create_infer_request()
        shape = self._compiled.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape]
        self.input_shape, self.fixed_batch = graph_io(dims)
        self.output_names = tuple(o.get_any_name() for o in self._compiled.outputs)
        self.device = f"{dev} ({self.precision})"
        self.graph = graph

    def _infer(self, batch: np.ndarray) -> Outputs:
        result = self._request.infer({0: batch}, share_inputs=True)
        return owned([result[o] for o in self._compiled.outputs], self.output_names)

    def _release(self) -> None:
        del self._request, self._compiled


def _blob_dir(onnx_path: Path, key: str) -> Path:
    """OpenVINO keys a cached blob by the model file's path, mtime (seconds)
    and size, so a graph re-exported in place with new weights of the same
    size could hit a stale blob: keep one cache folder per graph key, and
    drop the folders of graphs that superseded ones of this file."""
    own = onnx_path.parent / "openvino" / onnx_path.stem
    parent = writable_dir(own, cache_root() / "openvino")
    if parent == own:  # only this file's blobs live here
        for old in parent.iterdir():
            if old.is_dir() and old.name != key:
                shutil.rmtree(old, ignore_errors=True)
    target = parent / key
    target.mkdir(exist_ok=True)
    return target
