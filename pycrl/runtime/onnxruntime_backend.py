"""ONNX Runtime on the CPU: the reference runtime for the exported graph."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from pycrl import environment
from pycrl.export.onnx_cache import onnx_for
from pycrl.export.onnx_io import graph_io

from .errors import BackendUnavailable
from .interface import BaseBackend, Outputs, loading_graph, owned


class OnnxRuntimeBackend(BaseBackend):
    name = "onnxruntime"

    def __init__(self, model: Any, *, threads: Optional[int] = None, precision: str = "auto",
                 device: Optional[str] = None):
        self._require(environment.onnxruntime_backend(), precision)
        if device not in (None, "cpu", "CPU"):
            raise BackendUnavailable(self.name, f"pycrl uses its CPU provider only, not {device}")
        import onnxruntime as ort

        graph = onnx_for(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)  # 0: one per physical core
        opts.inter_op_num_threads = 1                  # the graph is one chain of ops
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        with loading_graph(graph.path, "ONNX Runtime"):
            self._session = ort.InferenceSession(str(graph.path), opts,
                                                 providers=["CPUExecutionProvider"])
            inp = self._session.get_inputs()[0]
            self._input = inp.name
            self.input_shape, self.fixed_batch = graph_io(inp.shape)
            self.output_names = tuple(o.name for o in self._session.get_outputs())
        self.device = f"cpu ({opts.intra_op_num_threads or 'all'} threads, f32)"
        self.graph = graph
        self._check_card(model, graph)

    def _infer(self, batch: np.ndarray) -> Outputs:
        # InferenceSession.run is thread-safe (documented): concurrent callers need no lock.
        return owned(self._session.run(list(self.output_names), {self._input: batch}),
                     self.output_names)

    def _release(self) -> None:
        del self._session
