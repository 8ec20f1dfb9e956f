"""The one small interface every inference backend implements.

A backend takes a float32 NCHW batch, already normalised with the model's
mean/std, and returns named float32 arrays: ``prob`` (B,), ``logits`` (B, 2),
``feat`` (B, D) and, for reconstruction models, ``recon`` (B, 3, H, W).
Arrays returned are owned by the caller (never views of runtime buffers).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from pycrl.errors import ModelFolderError, PycrlError
from pycrl.fileio import check_regular
from pycrl.model_card import ModelCard
from pycrl.model_folder import JSON_NAME

from .errors import BackendUnavailable

Outputs = Dict[str, np.ndarray]


@runtime_checkable
class Backend(Protocol):
    name: str                           # "openvino", "onnxruntime", "torch", "tensorrt"
    device: str                         # e.g. "CPU (bf16)", "cuda:0 NVIDIA H100 (fp16)"
    input_shape: Tuple[int, int, int]   # (C, H, W) the network was exported for
    output_names: Tuple[str, ...]

    def run(self, batch: np.ndarray) -> Outputs: ...

    def close(self) -> None: ...


class BaseBackend:
    """Input checks, batch splitting and context management shared by the
    implementations; a subclass sets its fields and implements ``_infer``."""

    name = ""
    device = ""
    input_shape: Tuple[int, int, int] = (0, 0, 0)
    output_names: Tuple[str, ...] = ()
    # Largest batch one call may take (TensorRT's profile); None: unbounded.
    max_batch: Optional[int] = None
    # A graph exported with a static batch takes exactly this many; shorter
    # chunks are zero-padded and the padding's outputs dropped.
    fixed_batch: Optional[int] = None
    _closed = False

    def _require(self, probe: Any, precision: str,
                 precisions: Optional[Sequence[str]] = ("auto", "f32")) -> None:
        """Raise BackendUnavailable unless the library probe (a
        ``pycrl.environment.Capability``) passed and ``precision`` is served."""
        if not probe.usable:
            raise BackendUnavailable(self.name, probe.detail)
        if precisions is not None and precision not in precisions:
            served = ", ".join(p for p in precisions if p != "auto")
            raise BackendUnavailable(self.name, f"runs {served} only, not {precision}")

    def _infer(self, batch: np.ndarray) -> Outputs:
        """One batch. ``run`` may be called from several threads at once on one backend (one
        Detector shared by a server's request threads), so this must be safe to call
        concurrently: each implementation says how it is."""
        raise NotImplementedError

    def _check_card(self, model: Any, graph: Any) -> None:
        """Refuse, at load, a model folder whose graph takes another input size than its
        model.json declares: the pipeline crops faces to the card's size, so such a graph
        would fail every item later instead of the load now."""
        if not isinstance(model, (str, os.PathLike)) or Path(model).suffix == ".onnx":
            return
        card = ModelCard.read(model)
        if tuple(card.input_size) != tuple(self.input_shape):
            raise ModelFolderError(
                f"{getattr(graph, 'path', graph)}: the graph takes {list(self.input_shape)} inputs but "
                f"{card.folder / JSON_NAME} declares input_size {list(card.input_size)}")

    def _release(self) -> None:
        """Free runtime objects; called once by close()."""

    def run(self, batch: np.ndarray) -> Outputs:
        if self._closed:
            raise RuntimeError(f"{self.name} backend is closed")
        x = check_batch(batch, self.input_shape)
        step = self.fixed_batch or self.max_batch
        if step is None:
            return self._infer(x)
        parts = [self._infer_chunk(x[i:i + step]) for i in range(0, len(x), step)]
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}

    def _infer_chunk(self, x: np.ndarray) -> Outputs:
        n, fixed = len(x), self.fixed_batch
        if not fixed or n == fixed:
            return self._infer(x)
        padded = np.zeros((fixed, *x.shape[1:]), dtype=np.float32)
        padded[:n] = x
        return {k: v[:n].copy() for k, v in self._infer(padded).items()}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (f"<{type(self).__name__} {self.name} on {self.device}: "
                f"(B,{c},{h},{w}) -> {', '.join(self.output_names)}>")


@contextmanager
def loading_graph(path: Any, runtime: str) -> Iterator[None]:
    """Open a graph file with a runtime library: refuse a FIFO or device first (the library
    would block on it or read forever), and turn the library's own errors on a file that is
    not a graph it can load (garbage, truncated, wrong opset) into a ModelFolderError naming
    the file. pycrl's typed errors (BackendUnavailable, ...) pass through."""
    check_regular(path, ModelFolderError)
    try:
        yield
    except PycrlError:
        raise
    except Exception as err:
        detail = " ".join(str(err).split())  # runtime messages span lines; an error is one
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise ModelFolderError(f"{path}: {runtime} cannot load this graph "
                               f"({type(err).__name__}: {detail})") from err


def check_batch(batch: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """The batch as C-contiguous float32 (B, C, H, W), or a clear error."""
    arr = np.asarray(batch)
    if not np.issubdtype(arr.dtype, np.floating):
        # uint8 pixels here almost always mean the mean/std step was skipped.
        raise TypeError(f"expected a normalised float32 batch, got dtype {arr.dtype}")
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(input_shape):
        raise ValueError(f"expected a batch of shape (B, {', '.join(map(str, input_shape))}), "
                         f"got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("empty batch")
    return np.ascontiguousarray(arr, dtype=np.float32)


def owned(arrays: Sequence[np.ndarray], names: Sequence[str]) -> Outputs:
    """Name runtime outputs, copying any that still alias runtime memory."""
    return {n: np.array(a, dtype=np.float32, copy=True) for n, a in zip(names, arrays)}
