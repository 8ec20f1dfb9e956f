"""TensorRT engines from the exported ONNX, cached on disk.

An engine only runs on the GPU model, compute capability and TensorRT
version it was built for, so its file name carries all three plus the graph
key and build options; a timing cache per GPU / TensorRT version makes
rebuilds (a new model, a new batch profile) fast. Written against the
TensorRT 10 Python API (Builder, OnnxParser, IBuilderConfig).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import tensorrt as trt

from pycrl.export.onnx_cache import OnnxExport, cache_root, writable_dir
from pycrl.fileio import atomic_write

from .errors import BackendUnavailable


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the graph or build an engine for it."""


@dataclass(frozen=True)
class EngineSpec:
    graph: OnnxExport
    gpu_name: str
    compute_capability: Tuple[int, int]
    max_batch: int
    opt_batch: int
    fp16: bool
    workspace_bytes: int

    @property
    def device_tag(self) -> str:
        """e.g. ``NVIDIA-H100-80GB-HBM3-sm90-trt10.13.0.35``."""
        gpu = re.sub(r"[^A-Za-z0-9.]+", "-", self.gpu_name).strip("-")
        major, minor = self.compute_capability
        return f"{gpu}-sm{major}{minor}-trt{trt.__version__}"

    def key(self) -> str:
        doc = {"graph": self.graph.key, "device": self.device_tag, "max_batch": self.max_batch,
               "opt_batch": self.opt_batch, "fp16": self.fp16}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def dims(shape: trt.Dims) -> List[int]:
    """A Dims as a list (it behaves like a tuple, but is typed by indexing)."""
    return [int(shape[i]) for i in range(len(shape))]


def engine_dir(graph: OnnxExport) -> Path:
    return writable_dir(graph.path.parent / "tensorrt", cache_root() / "tensorrt")


def engine_path(spec: EngineSpec) -> Path:
    return engine_dir(spec.graph) / f"{spec.graph.path.stem}-{spec.device_tag}-{spec.key()}.engine"


def timing_cache_path(spec: EngineSpec) -> Path:
    return engine_dir(spec.graph) / f"timing-{spec.device_tag}.cache"



def build_engine(spec: EngineSpec, logger: trt.ILogger) -> bytes:
    """Parse the ONNX, build a serialized engine with a batch 1..max_batch
    profile (FP16 kernels allowed when ``spec.fp16``), update the timing cache."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.graph.path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {spec.graph.path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_bytes)
    if spec.fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise BackendUnavailable("tensorrt", f"TensorRT {trt.__version__} has no FP16 builder "
                                     "flag (weakly typed networks removed); use TensorRT 10")
        if not builder.platform_has_fast_fp16:
            raise BackendUnavailable("tensorrt", f"{spec.gpu_name} has no fast FP16")
        config.set_flag(trt.BuilderFlag.FP16)
    else:  # f32 means f32: no TF32 tensor-core maths (on by default on Ampere+)
        config.clear_flag(trt.BuilderFlag.TF32)

    image = network.get_input(0)
    shape = dims(image.shape)
    if shape[0] == -1:  # dynamic batch: one profile covering every batch we serve
        chw = shape[1:]
        profile = builder.create_optimization_profile()
        profile.set_shape(image.name, trt.Dims([1, *chw]), trt.Dims([spec.opt_batch, *chw]),
                          trt.Dims([spec.max_batch, *chw]))
        config.add_optimization_profile(profile)

    timing_path = timing_cache_path(spec)
    previous = timing_path.read_bytes() if timing_path.is_file() else b""
    timing = config.create_timing_cache(previous)
    config.set_timing_cache(timing, ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"TensorRT failed to build an engine for {spec.graph.path} "
                               "(see the TensorRT log above)")
    atomic_write(timing_path, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))


def load_or_build(spec: EngineSpec, logger: trt.ILogger) -> Tuple[bytes, Path, bool]:
    """(serialized engine, its cache file, whether it was built now)."""
    path = engine_path(spec)
    if path.is_file():
        return path.read_bytes(), path, False
    plan = build_engine(spec, logger)
    atomic_write(path, plan)
    return plan, path, True

