"""TensorRT on an NVIDIA GPU: an FP16 engine built from the exported ONNX,
with device buffers and a stream from pycuda.

``run`` takes a host batch like every backend; ``run_device`` takes a device
pointer, so a batch that DALI decoded and normalised on the GPU goes into
the engine without a round trip through host memory.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

import numpy as np

from pycrl import environment
from pycrl.errors import ModelFolderError
from pycrl.export.onnx_cache import onnx_for
from pycrl.export.onnx_io import OUTPUT_NAMES
from pycrl.fileio import check_regular

from .errors import BackendUnavailable
from .interface import BaseBackend, Outputs

if TYPE_CHECKING:
    import tensorrt as trt


def _device_index(device: Optional[str]) -> int:
    prefix, _, index = (device or "cuda").partition(":")
    if prefix != "cuda" or not (index == "" or index.isdigit()):
        raise BackendUnavailable("tensorrt", f"runs on CUDA devices ('cuda' or 'cuda:N'), "
                                 f"not {device!r}")
    return int(index or 0)


class TensorRTBackend(BaseBackend):
    name = "tensorrt"

    def __init__(self, model: Any, *, precision: str = "auto", device: Optional[str] = None,
                 max_batch: int = 64, opt_batch: Optional[int] = None,
                 workspace_mb: int = 2048):
        self._require(environment.tensorrt_backend(), precision, ("auto", "fp16", "f32"))
        import tensorrt as trt

        if not hasattr(trt, "Builder"):  # e.g. only the tensorrt-stubs package
            raise BackendUnavailable(self.name, "the tensorrt package found has no runtime "
                                     "(type stubs only?); install tensorrt>=10,<11")
        try:
            import pycuda.driver as cuda  # type: ignore[import-untyped,import-not-found]
        except ImportError as err:
            raise BackendUnavailable(self.name, f"pycuda is needed for buffers and streams: {err}") from err
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")

        from . import tensorrt_build as build

        cuda.init()
        index = _device_index(device)
        gpu = cuda.Device(index)
        # The primary context is the one the CUDA runtime (DALI, torch) uses,
        # so their device pointers are valid here too.
        self._cuda = cuda
        self._ctx = gpu.retain_primary_context()
        self._ctx.push()
        try:
            graph = onnx_for(model)
            check_regular(graph.path, ModelFolderError)  # TensorRT's parser opens it by name
            spec = build.EngineSpec(
                graph=graph, gpu_name=gpu.name(), compute_capability=gpu.compute_capability(),
                max_batch=max_batch, opt_batch=min(opt_batch or max_batch, max_batch),
                fp16=precision != "f32", workspace_bytes=workspace_mb << 20)
            self._logger = trt.Logger(trt.Logger.WARNING)
            plan, self.engine_path, self.engine_built = build.load_or_build(spec, self._logger)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(plan)
            if self._engine is None:
                raise build.EngineBuildError(f"could not deserialize {self.engine_path}")
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._allocate(max_batch)
        except BaseException:
            self._ctx.pop()
            self._ctx.detach()
            raise
        self._ctx.pop()
        # One execution context, one stream and one set of pinned buffers: an execution context
        # is not thread-safe (TensorRT's docs) and the buffers are shared, so concurrent run()
        # / run_device() calls take turns under this lock. (A context, stream and buffers per
        # caller would let small batches overlap, at a copy of the activation memory each.)
        self._lock = threading.Lock()
        try:
            self._check_card(model, graph)
        except BaseException:
            self.close()
            raise
        self.graph = graph
        self.precision = "fp16" if spec.fp16 else "f32"
        self.device = f"cuda:{index} {spec.gpu_name} ({self.precision})"

    def _allocate(self, max_batch: int) -> None:
        """Device buffers and pinned host mirrors sized for the largest batch."""
        import tensorrt as trt

        from . import tensorrt_build as build

        engine: trt.ICudaEngine = self._engine
        context: trt.IExecutionContext = self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise BackendUnavailable(self.name, f"expected one image input, engine has {inputs}")
        self._input = inputs[0]
        shape = build.dims(engine.get_tensor_shape(self._input))
        self.input_shape = (int(shape[1]), int(shape[2]), int(shape[3]))
        if shape[0] > 0:
            self.fixed_batch = int(shape[0])
        else:
            self.max_batch = max_batch
        capacity = self.fixed_batch or max_batch
        context.set_input_shape(self._input, (capacity, *self.input_shape))
        served = [n for n in names if n != self._input]
        self.output_names = tuple(sorted(served, key=lambda n: OUTPUT_NAMES.index(n)
                                         if n in OUTPUT_NAMES else len(OUTPUT_NAMES)))
        cuda = self._cuda
        self._sample_bytes = int(np.prod(self.input_shape)) * 4
        self._host_in = cuda.pagelocked_empty((capacity, *self.input_shape), np.float32)
        self._device_in = cuda.mem_alloc(self._host_in.nbytes)
        self._host_out: Dict[str, np.ndarray] = {}
        self._device_out: Dict[str, Any] = {}
        for name in self.output_names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = cuda.pagelocked_empty(tuple(build.dims(context.get_tensor_shape(name))), dtype)
            self._host_out[name] = host
            self._device_out[name] = cuda.mem_alloc(host.nbytes)
            context.set_tensor_address(name, int(self._device_out[name]))

    @contextmanager
    def _current(self) -> Iterator[None]:
        self._ctx.push()
        try:
            yield
        finally:
            self._ctx.pop()

    @property
    def stream_handle(self) -> int:
        """The CUDA stream the engine runs on, e.g. for DALI to produce into."""
        return int(self._stream.handle)

    def _infer(self, batch: np.ndarray) -> Outputs:
        n = len(batch)
        with self._lock, self._current():
            self._host_in[:n] = batch
            self._cuda.memcpy_htod_async(self._device_in, self._host_in[:n], self._stream)
            return self._execute(int(self._device_in), n)

    def run_device(self, input_ptr: int, batch_size: int) -> Outputs:
        """Run on a float32 NCHW batch already on this GPU at ``input_ptr``
        (contiguous, normalised, ``batch_size`` samples), e.g.
        ``pipe.run()[0].as_tensor().data_ptr()`` of a DALI pipeline, which
        returns once the batch is ready. The memory is only read, and must
        stay valid until this returns (i.e. before DALI's next ``run``)."""
        if self._closed:
            raise RuntimeError("tensorrt backend is closed")
        if batch_size < 1:
            raise ValueError("empty batch")
        step = self.fixed_batch or self.max_batch or batch_size
        if self.fixed_batch and batch_size % step:
            raise ValueError(f"this engine has a static batch of {step}")
        parts = []
        with self._lock, self._current():
            for start in range(0, batch_size, step):
                n = min(step, batch_size - start)
                parts.append(self._execute(int(input_ptr) + start * self._sample_bytes, n))
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def _execute(self, input_ptr: int, n: int) -> Outputs:
        """Enqueue the engine on ``n`` samples at ``input_ptr`` and copy the
        outputs back; the caller has made the context current."""
        context: trt.IExecutionContext = self._context
        if not context.set_input_shape(self._input, (n, *self.input_shape)):
            raise ValueError(f"batch {n} is outside the engine's profile")
        context.set_tensor_address(self._input, input_ptr)
        if not context.execute_async_v3(self._stream.handle):
            raise RuntimeError("TensorRT failed to enqueue the engine")
        for name in self.output_names:
            self._cuda.memcpy_dtoh_async(self._host_out[name][:n], self._device_out[name],
                                         self._stream)
        self._stream.synchronize()
        return {name: self._host_out[name][:n].astype(np.float32, copy=True)
                for name in self.output_names}

    def _release(self) -> None:
        with self._lock, self._current():
            self._stream.synchronize()
            for buf in [self._device_in, *self._device_out.values()]:
                buf.free()
            del self._context, self._engine, self._runtime
        self._ctx.detach()
