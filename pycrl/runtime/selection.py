"""Backends by name, and ``auto``: the fastest one that can run here."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, List

from .errors import BackendUnavailable
from .interface import Backend

# name -> "module:class"; modules are imported only when chosen.
BACKENDS: Dict[str, str] = {
    "tensorrt": "pycrl.runtime.tensorrt_backend:TensorRTBackend",
    "openvino": "pycrl.runtime.openvino_backend:OpenVINOBackend",
    "onnxruntime": "pycrl.runtime.onnxruntime_backend:OnnxRuntimeBackend",
    "torch": "pycrl.runtime.torch_backend:TorchBackend",
}
AUTO_ORDER = ("tensorrt", "openvino", "onnxruntime", "torch")
#: Backends that run on a GPU only: skipped by ``auto`` (and refused by name) on device "cpu".
GPU_ONLY = frozenset({"tensorrt"})


def _backend_class(name: str) -> type:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose from auto, "
                         f"{', '.join(BACKENDS)}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def _accepted(cls: type, options: Dict[str, Any]) -> Dict[str, Any]:
    params = inspect.signature(cls).parameters
    return {k: v for k, v in options.items() if k in params}


def open_backend(name: str, model: Any, **options: Any) -> Backend:
    """Open ``model`` (a model folder, an ``.onnx`` file, an OnnxExport or a
    torch detector module) on backend ``name``.

    Common options: ``precision`` ("auto" | "f32" | "bf16" | "fp16"),
    ``threads``, ``device``; others are backend-specific (e.g. TensorRT's
    ``max_batch``). ``auto`` tries tensorrt, openvino, onnxruntime, torch in
    that order, passing each the options it understands, and raises
    BackendUnavailable with every reason when none can run. ``device="cpu"``
    leaves the GPU-only backends out (each CPU backend's default device is the CPU).
    """
    order: tuple[str, ...] = AUTO_ORDER
    if options.get("device") == "cpu":
        options = {k: v for k, v in options.items() if k != "device"}
        if name in GPU_ONLY:
            raise BackendUnavailable(name, f"{name} needs device='cuda'")
        order = tuple(n for n in AUTO_ORDER if n not in GPU_ONLY)
    if name != "auto":
        return _backend_class(name)(model, **options)
    classes = {n: _backend_class(n) for n in order}
    unused = set(options).difference(*(_accepted(c, options) for c in classes.values()))
    if unused:
        raise TypeError(f"no backend takes the option(s) {sorted(unused)}")
    reasons: List[str] = []
    for candidate, cls in classes.items():
        try:
            return cls(model, **_accepted(cls, options))
        except BackendUnavailable as err:
            reasons.append(f"{candidate}: {err.reason}")
    raise BackendUnavailable("auto", "no backend can run here (" + "; ".join(reasons) + ")")
