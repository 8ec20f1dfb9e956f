"""OpenVINO: the default CPU backend. Compiles the exported ONNX directly;
bf16 where the CPU has native support (AVX-512 BF16 / AMX), f32 on request."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from pycrl import environment
from pycrl.errors import ModelFolderError
from pycrl.export.onnx_cache import cache_root, onnx_for, writable_dir
from pycrl.export.onnx_io import graph_io

from .errors import BackendUnavailable
from .interface import BaseBackend, Outputs, loading_graph, owned

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
        with loading_graph(graph.path, "OpenVINO"):
            # Given a file its ONNX reader rejects, OpenVINO tries every other frontend, and the
            # TensorFlow one logs its parse errors straight to stderr: ask the ONNX one first.
            if not ov.frontend.FrontEndManager().load_by_framework("onnx").supported(str(graph.path)):
                raise ModelFolderError(f"{graph.path}: not an ONNX model (OpenVINO's ONNX reader rejects it)")
            self._compiled = core.compile_model(str(graph.path), dev, config)
            shape = self._compiled.inputs[0].get_partial_shape()
            dims = [d.get_length() if d.is_static else None for d in shape]
            self.input_shape, self.fixed_batch = graph_io(dims)
            self.output_names = tuple(o.get_any_name() for o in self._compiled.outputs)
        # An InferRequest runs one inference at a time ("Infer Request is busy" for a second
        # caller), so concurrent run() calls each take an idle request from this pool, made on
        # demand (CompiledModel.create_infer_request is thread-safe): as many requests as callers
        # ever overlapped, each with its own output tensors (measured: +4.3 MB RSS per extra
        # request at batch 32).
        # Measured against one request under a lock (the default model, batch 32, bf16, this
        # 2-core Xeon, 2 threads x 4 batches, medians of 6 interleaved rounds, 3 runs):
        # pool 159 / 184 / 183 img/s, lock 183 / 177 / 190 img/s, one thread alone 162-189 for
        # both. The same, within noise: under the LATENCY hint one inference already takes every
        # core. The pool is kept because no caller waits on another's input/output copies and it
        # lets requests overlap wherever OpenVINO runs several streams, which a lock never can.
        self._pool = [self._compiled.create_infer_request()]
        self._pool_lock = threading.Lock()
        self.device = f"{dev} ({self.precision})"
        self.graph = graph
        self._check_card(model, graph)

    def _infer(self, batch: np.ndarray) -> Outputs:
        with self._pool_lock:
            request = self._pool.pop() if self._pool else None
        if request is None:
            request = self._compiled.create_infer_request()
        try:
            return self._infer_on(request, batch)
        finally:
            with self._pool_lock:
                self._pool.append(request)

    def _infer_on(self, request: Any, batch: np.ndarray) -> Outputs:
        result = request.infer({0: batch}, share_inputs=True)
        # copied before the request goes back to the pool: its output tensors are reused
        return owned([result[o] for o in self._compiled.outputs], self.output_names)

    def _release(self) -> None:
        with self._pool_lock:
            self._pool.clear()
        del self._compiled


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
