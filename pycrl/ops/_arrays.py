"""Allocation of kernel outputs in the caller's array library and device.

Outputs follow the reference input: numpy in, numpy out; torch in, torch out
(same device). torch is never imported here unless the input is a tensor.
"""

from __future__ import annotations

import sys

import numpy as np


def _is_torch(a) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def empty_like_ref(ref, shape: tuple, dtype: str | None = None):
    """An uninitialised array of `shape`, of ref's library, device and (default) dtype."""
    if _is_torch(ref):
        import torch

        dt = ref.dtype if dtype is None else getattr(torch, dtype)
        return torch.empty(shape, dtype=dt, device=ref.device)
    if isinstance(ref, np.ndarray):
        return np.empty(shape, dtype=ref.dtype if dtype is None else dtype)
    # Other producers (buffer protocol or DLPack on the CPU): numpy outputs.
    dev = getattr(ref, "__dlpack_device__", None)
    if dev is not None and dev()[0] not in (1, 3):
        raise TypeError(f"outputs for {type(ref).__name__} on device {dev()} need torch tensors; pass torch tensors")
    return np.empty(shape, dtype=np.asarray(ref).dtype if dtype is None else dtype)


def as_like(value, ref, name: str):
    """A small per-sample vector (mask, centre, ...) in ref's library, dtype and device."""
    if _is_torch(ref):
        import torch

        return torch.as_tensor(value, dtype=ref.dtype, device=ref.device).contiguous()
    if _is_torch(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.asarray(ref).dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected numbers convertible to {np.asarray(ref).dtype}, got {value!r}") from err
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d arrays 0-d


def stream_of(ref) -> int:
    """The CUDA stream a kernel on ref's device should run on (0 on the CPU)."""
    if _is_torch(ref) and ref.is_cuda:
        import torch

        return int(torch.cuda.current_stream(ref.device).cuda_stream)
    return 0
