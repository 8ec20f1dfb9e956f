"""Tracing a torch detector to ONNX (the torch side of ``export_onnx``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from pycrl.errors import ExportError
from pycrl.fileio import atomic_path

from .digest import TORCH_DTYPE_CODES, TensorDigest
from .inference_outputs import inference_outputs
from .onnx_io import INPUT_NAME


def state_digest(module: nn.Module) -> str:
    """Same digest as ``digest.safetensors_digest`` of the saved module."""
    digest = TensorDigest()
    state = module.state_dict()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy()
        digest.add(name, TORCH_DTYPE_CODES.get(str(t.dtype), str(t.dtype)), list(t.shape), raw)
    return digest.hexdigest()


def describe_module(module: nn.Module) -> Tuple[str, Dict[str, Any], Dict[str, Any], str]:
    """(architecture, config, meta, weights digest) of a module to export.

    Registered models are named by the registry; any other detector module by
    its class, its weights still keeping the key honest.
    """
    cls = type(module)
    architecture = getattr(cls, "pycrl_name", None) or f"{cls.__module__}.{cls.__qualname__}"
    config = dict(getattr(module, "pycrl_config", {}) or {})
    meta = getattr(module, "pycrl_meta", None) or getattr(module, "default_meta", None) or {}
    return architecture, config, dict(meta), state_digest(module)


def load_folder(folder: Path) -> nn.Module:
    from pycrl.weights import load

    return load(folder)


def trace_to_onnx(module: nn.Module, path: Path, *, input_shape: Sequence[int], key: str,
                  opset: int, batch_dynamic: bool,
                  outputs: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """Write the checked graph to ``path`` atomically; returns the output names."""
    try:
        import onnx
    except ImportError as err:
        raise ExportError(f"exporting needs the onnx package ({err})") from err

    was_training = module.training
    module.eval()
    try:
        with atomic_path(path) as tmp:
            return _trace(module, tmp, input_shape=input_shape, key=key, opset=opset,
                          batch_dynamic=batch_dynamic, outputs=outputs, onnx=onnx)
    finally:
        module.train(was_training)


def _trace(module: nn.Module, tmp: Path, *, input_shape: Sequence[int], key: str, opset: int,
           batch_dynamic: bool, outputs: Optional[Sequence[str]], onnx: Any) -> Tuple[str, ...]:
    head = inference_outputs(module, input_shape, outputs)  # ValueError: bad request
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    # Batch 2, not 1, so the tracer cannot specialise anything to a
    # singleton batch before the axis is declared dynamic.
    example = torch.zeros(2 if batch_dynamic else 1, *input_shape, device=device)
    names = list(head.outputs)
    dynamic = {n: {0: "batch"} for n in [INPUT_NAME, *names]} if batch_dynamic else None
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter announces its deprecation on every call.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            # Shapes read as Python ints are meant to be constants: only the batch is dynamic.
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(head, (example,), str(tmp), opset_version=opset, dynamo=False,
                              input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as err:
        raise ExportError(f"could not export {type(module).__name__} to ONNX: "
                          f"{type(err).__name__}: {err}") from err
    proto = onnx.load(str(tmp))
    _pin_output_shapes(proto, head.sample_shapes)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"exported graph of {type(module).__name__} failed the "
                          f"ONNX checker: {err}") from err
    onnx.helper.set_model_props(proto, {"pycrl_key": key, "pycrl_outputs": ",".join(names)})
    onnx.save(proto, str(tmp))
    return head.outputs


def _pin_output_shapes(proto: Any, sample_shapes: Dict[str, Tuple[int, ...]]) -> None:
    """Write the probed per-sample shapes into the graph outputs: the tracer
    leaves some (e.g. after a reduction) symbolic, and runtimes plan buffers
    better, TensorRT included, when only the batch axis is free."""
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(list(dims)[1:], sample_shapes[value.name]):
            dim.Clear()
            dim.dim_value = int(size)
