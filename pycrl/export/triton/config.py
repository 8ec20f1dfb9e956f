"""The three Triton models of an exported repository, as config messages.

``<name>_preprocess`` (DALI: encoded face crop -> normalised CHW float32),
``<name>_net`` (the exported graph on ONNX Runtime or TensorRT) and the
ensemble ``<name>`` that chains them. Tensor names, shapes and types come from
the ONNX graph itself (:func:`onnx_signature`), so a config cannot drift from
the graph it serves. :mod:`.pbtxt` writes the messages as text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple, Union

from pycrl.export.onnx_io import graph_io

from .pbtxt import Enum

PathLike = Union[str, "os.PathLike[str]"]

# What a client sends to the ensemble and the DALI model: one encoded image
# (PNG, JPEG, ...) per batch row, zero-padded to the longest in the request.
IMAGE_INPUT = "IMAGE"
DALI_OUTPUT = "PREPROCESSED"     # the DALI model's output
ENSEMBLE_TENSOR = "preprocessed"  # its name between the two ensemble steps

# onnxruntime's type strings -> Triton data types.
TRITON_TYPES = {
    "tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(bfloat16)": "TYPE_BF16",
    "tensor(double)": "TYPE_FP64", "tensor(int64)": "TYPE_INT64", "tensor(int32)": "TYPE_INT32",
    "tensor(int16)": "TYPE_INT16", "tensor(int8)": "TYPE_INT8", "tensor(uint8)": "TYPE_UINT8",
    "tensor(bool)": "TYPE_BOOL",
}

# --triton-backend -> (Triton platform, model file in the version folder)
PLATFORMS = {"onnxruntime": ("onnxruntime_onnx", "model.onnx"), "tensorrt": ("tensorrt_plan", "model.plan")}
DEVICES = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


class TritonExportError(ValueError):
    """A model or option that cannot become a Triton model repository."""


class RepositoryExistsError(TritonExportError, FileExistsError):
    """The destination already holds files and ``overwrite`` was not given."""


@dataclass(frozen=True)
class Tensor:
    """One model input or output as Triton declares it."""

    name: str
    data_type: str              # Triton type, e.g. "TYPE_FP32"
    dims: Tuple[int, ...]       # per sample; Triton adds the batch axis
    batch_only: bool = False    # the graph's tensor is (batch,): Triton serves (batch, 1)

    def config(self, *, reshape: bool = True) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"name": self.name, "data_type": Enum(self.data_type), "dims": list(self.dims)}
        if reshape and self.batch_only:
            # Triton needs non-empty dims; reshape maps [1] back to the graph's scalar.
            entry["reshape"] = {"shape": []}
        return entry


@dataclass(frozen=True)
class Signature:
    """The graph's image input and its outputs, in graph order."""

    input: Tensor
    outputs: Tuple[Tensor, ...]

    @property
    def input_chw(self) -> Tuple[int, int, int]:
        c, h, w = self.input.dims
        return c, h, w


def _triton_type(ort_type: str, what: str) -> str:
    try:
        return TRITON_TYPES[ort_type]
    except KeyError:
        raise TritonExportError(f"{what}: type {ort_type} has no Triton equivalent") from None


def _is_dynamic(dim: object) -> bool:
    return not (isinstance(dim, int) and dim > 0)


def onnx_signature(path: PathLike) -> Signature:
    """Read an exported graph's I/O with ONNX Runtime (a core dependency; no
    torch, no onnx). Requires what Triton's batching requires: one NCHW image
    input and every tensor with a dynamic batch axis and static sample dims."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only reading I/O
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise TritonExportError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
    inp = inputs[0]
    try:
        chw, fixed = graph_io(inp.shape)
    except ValueError as err:
        raise TritonExportError(f"{path}: input {inp.name!r}: {err}") from err
    if fixed is not None:
        raise TritonExportError(f"{path}: input {inp.name!r} has a fixed batch of {fixed}; Triton's dynamic "
                                f"batching needs a dynamic batch axis (re-export with batch_dynamic=True)")
    if inp.type != "tensor(float)":
        raise TritonExportError(f"{path}: input {inp.name!r} is {inp.type}; the DALI step produces float32")
    outputs = []
    for out in session.get_outputs():
        shape = list(out.shape)
        if not shape or not _is_dynamic(shape[0]) or any(_is_dynamic(d) for d in shape[1:]):
            raise TritonExportError(f"{path}: output {out.name!r} has shape {shape}; expected a dynamic "
                                    f"batch axis followed by static sizes")
        dims = tuple(int(d) for d in shape[1:])
        outputs.append(Tensor(out.name, _triton_type(out.type, out.name), dims or (1,), batch_only=not dims))
    return Signature(Tensor(inp.name, "TYPE_FP32", chw), tuple(outputs))


@dataclass(frozen=True)
class ServingOptions:
    """How Triton should run the models (checked on construction)."""

    backend: str = "onnxruntime"      # "onnxruntime" | "tensorrt"
    device: str = "gpu"               # "gpu" | "cpu" (no GPU on the serving host)
    max_batch_size: int = 32
    max_queue_delay_us: int = 500     # how long the dynamic batcher may wait to fill a batch
    instances: int = 1                # network instances per device

    def __post_init__(self) -> None:
        if self.backend not in PLATFORMS:
            raise TritonExportError(f"backend: expected one of {', '.join(PLATFORMS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise TritonExportError(f"device: expected one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.backend == "tensorrt" and self.device == "cpu":
            raise TritonExportError("TensorRT engines run on GPUs only: use backend 'onnxruntime' for CPU serving")
        if self.max_batch_size < 1 or self.max_queue_delay_us < 0 or self.instances < 1:
            raise TritonExportError("need max_batch_size >= 1, max_queue_delay_us >= 0 and instances >= 1")

    @property
    def kind(self) -> Enum:
        return Enum(DEVICES[self.device])

    def batching(self) -> Dict[str, Any]:
        m = self.max_batch_size
        # Full batches run at once; a quarter and a half are the sizes a busy
        # queue reaches often (Triton still forms any size up to m).
        preferred = sorted({max(1, m // 4), max(1, m // 2), m})
        return {"preferred_batch_size": preferred, "max_queue_delay_microseconds": self.max_queue_delay_us}


def net_config(name: str, sig: Signature, opts: ServingOptions) -> Dict[str, Any]:
    platform, filename = PLATFORMS[opts.backend]
    return {
        "name": name,
        "platform": platform,
        "default_model_filename": filename,
        "max_batch_size": opts.max_batch_size,
        "input": [sig.input.config()],
        "output": [o.config() for o in sig.outputs],
        "dynamic_batching": opts.batching(),
        "instance_group": [{"count": opts.instances, "kind": opts.kind}],
    }


def preprocess_config(name: str, sig: Signature, opts: ServingOptions) -> Dict[str, Any]:
    return {
        "name": name,
        "backend": "dali",
        "max_batch_size": opts.max_batch_size,
        # Encoded images differ in length from request to request: ragged
        # batching lets the dynamic batcher still merge them.
        "input": [{"name": IMAGE_INPUT, "data_type": Enum("TYPE_UINT8"), "dims": [-1],
                   "allow_ragged_batch": True}],
        "output": [{"name": DALI_OUTPUT, "data_type": Enum("TYPE_FP32"), "dims": list(sig.input.dims)}],
        "dynamic_batching": opts.batching(),
        # One instance: DALI's own threads and GPU decoder do the parallel work
        # (the DALI backend advises against more instances: memory).
        "instance_group": [{"count": 1, "kind": opts.kind}],
    }


def _pairs(mapping: Mapping[str, str]) -> List[Dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def ensemble_config(name: str, preprocess: str, net: str, sig: Signature, opts: ServingOptions,
                    parameters: Mapping[str, str]) -> Dict[str, Any]:
    """Client bytes -> DALI -> network; exposes every network output.
    ``parameters`` (e.g. the decision threshold) reach clients through
    Triton's model-config API; Triton itself ignores them."""
    steps = [
        {"model_name": preprocess, "model_version": -1,
         "input_map": _pairs({IMAGE_INPUT: IMAGE_INPUT}), "output_map": _pairs({DALI_OUTPUT: ENSEMBLE_TENSOR})},
        {"model_name": net, "model_version": -1,
         "input_map": _pairs({sig.input.name: ENSEMBLE_TENSOR}),
         "output_map": _pairs({o.name: o.name for o in sig.outputs})},
    ]
    return {
        "name": name,
        "platform": "ensemble",
        "max_batch_size": opts.max_batch_size,
        "input": [{"name": IMAGE_INPUT, "data_type": Enum("TYPE_UINT8"), "dims": [-1]}],
        # The net already serves batch-only outputs as [1]: no reshape here.
        "output": [o.config(reshape=False) for o in sig.outputs],
        "ensemble_scheduling": {"step": steps},
        "parameters": [{"key": k, "value": {"string_value": v}} for k, v in parameters.items()],
    }
