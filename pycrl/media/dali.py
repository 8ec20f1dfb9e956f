"""GPU video decoding and batch preparation with NVIDIA DALI (optional).

A thin layer: PyAV on the CPU plans which frames to take (the same
``linspace`` indices as ``sample_frames``, without decoding), DALI decodes
those frames on the GPU (NVDEC, ``fn.decoders.video`` on device "mixed"),
resizes the shorter side, centre-crops and normalises the batch, and leaves
it in GPU memory for TensorRT.

Nothing here imports DALI until a function is called. ``device="cpu"`` runs
the same graph on DALI's CPU backend, which decodes only VP8, VP9 and MJPEG
(not H.264); it exists for tests and for machines without a GPU.

Not handled on this path (use ``sample_frames`` where they matter): display
rotation (reported in ``VideoInfo.rotation``, frames stay as coded), the
decode-time timeout, and keyframes mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..limits import DEFAULT_LIMITS, Limits
from ._source import is_path, open_local
from .errors import MediaError
from .video import VideoInfo, plan_uniform

__all__ = ["DaliBatch", "DaliVideoBatcher", "build_video_pipeline", "dali_available"]


def _import_dali():
    import nvidia.dali  # noqa: F401  (raises ImportError when absent)
    from nvidia.dali import backend, fn, pipeline_def, types

    return fn, types, pipeline_def, backend


def dali_available() -> tuple[bool, str]:
    """Whether the GPU pipeline can run here, and why not when it cannot."""
    try:
        fn, _, _, backend = _import_dali()
    except ImportError as exc:
        return False, f"nvidia-dali is not installed ({exc}); pip install nvidia-dali-cuda120"
    import nvidia.dali

    version = getattr(nvidia.dali, "__version__", "?")
    if not hasattr(fn, "decoders") or not hasattr(fn.decoders, "video"):
        return False, f"DALI {version} has no fn.decoders.video; upgrade nvidia-dali"
    try:
        count = backend.GetCUDADeviceCount()
    except Exception as exc:  # driver missing or broken: DALI raises its own types
        return False, f"DALI {version} cannot query CUDA ({exc})"
    if count < 1:
        return False, f"DALI {version} is installed but no CUDA device is visible"
    return True, f"DALI {version}, {count} CUDA device(s)"


def build_video_pipeline(
    *,
    batch_size: int,
    size: int = 256,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    device: str = "gpu",
    device_id: int = 0,
    num_threads: int = 2,
):
    """A DALI pipeline fed with ``encoded`` (file bytes) and ``frames`` (int32 indices).

    Outputs per video: the decoded frames (F, H, W, 3) uint8 and the model
    input (F, 3, size, size) float32, ``(x / 255 - mean) / std`` after
    resizing the shorter side to ``size`` and centre-cropping.
    """
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be 'gpu' or 'cpu', got {device!r}")
    if device == "gpu":
        ok, reason = dali_available()
        if not ok:
            raise RuntimeError(f"DALI GPU pipeline unavailable: {reason}")
    fn, types, pipeline_def, _ = _import_dali()
    scale = 255.0

    @pipeline_def
    def video_pipeline():
        encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
        indices = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
        frames = fn.decoders.video(encoded, frames=indices, device="mixed" if device == "gpu" else "cpu")
        resized = fn.resize(frames, resize_shorter=size, interp_type=types.INTERP_LINEAR, antialias=True)
        model_input = fn.crop_mirror_normalize(
            resized,
            crop=(size, size),
            dtype=types.FLOAT,
            output_layout="FCHW",
            mean=[m * scale for m in mean],
            std=[s * scale for s in std],
        )
        return frames, model_input

    pipe = video_pipeline(
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=device_id if device == "gpu" else None,
        prefetch_queue_depth=1,
    )
    pipe.build()
    return pipe


@dataclass
class DaliBatch:
    """One video's output: DALI tensors (GPU memory on device "gpu")."""

    source: object
    indices: np.ndarray  #: frame indices decoded (uniform linspace plan)
    info: VideoInfo
    frames: object  #: DALI tensor (F, H, W, 3) uint8, as coded (no rotation)
    model_input: object  #: DALI tensor (F, 3, size, size) float32

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Copy both outputs to host arrays."""
        return _host(self.frames), _host(self.model_input)


def _host(tensor) -> np.ndarray:
    if hasattr(tensor, "as_cpu"):
        tensor = tensor.as_cpu()
    return np.asarray(tensor)


class DaliVideoBatcher:
    """Decode ``n`` uniformly sampled frames of many videos, ``batch_size`` at a time."""

    def __init__(self, *, n: int = 32, batch_size: int = 4, limits: Limits | None = None, **pipeline_kwargs):
        self.n = n
        self.batch_size = batch_size
        self.limits = limits or DEFAULT_LIMITS
        self.pipe = build_video_pipeline(batch_size=batch_size, **pipeline_kwargs)

    def run(self, sources) -> list[DaliBatch]:
        """Process up to ``batch_size`` videos (paths or bytes) in one pipeline run."""
        sources = list(sources)
        if not 0 < len(sources) <= self.batch_size:
            raise ValueError(f"give 1..{self.batch_size} videos, got {len(sources)}")
        encoded = [self._bytes(src) for src in sources]
        # Plan on the very bytes DALI decodes (the file could change between two opens).
        plans = [self._plan(src, data) for src, data in zip(sources, encoded, strict=True)]
        indices = [idx.astype(np.int32) for idx, _ in plans]
        pad = self.batch_size - len(sources)  # DALI runs full batches: repeat the last video
        self.pipe.feed_input("encoded", encoded + encoded[-1:] * pad)
        self.pipe.feed_input("frames", indices + indices[-1:] * pad)
        frames, model_input = self.pipe.run()
        return [
            DaliBatch(src, idx, info, frames[i], model_input[i])
            for i, (src, (idx, info)) in enumerate(zip(sources, plans, strict=True))
        ]

    def _bytes(self, source) -> np.ndarray:
        if is_path(source):
            with open_local(source) as fh:  # absolute path, regular file: never a URL or a FIFO
                return np.frombuffer(fh.read(), dtype=np.uint8)
        return np.frombuffer(bytes(source), dtype=np.uint8)

    def _plan(self, source, data: np.ndarray):
        try:
            return plan_uniform(data.data, self.n, self.limits)  # a memoryview, not a copy
        except MediaError as exc:  # name the caller's source, not "<N bytes in memory>"
            raise type(exc)(source, exc.reason) from None
