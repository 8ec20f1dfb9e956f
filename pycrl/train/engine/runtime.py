"""Where and how the run executes: device, mixed precision, threads, seeds, RNG snapshots."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext

import numpy as np
import torch


def pick_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={spec!r} but this torch sees no CUDA device; use auto or cpu")
    return device


def amp_dtype_for(mode: str, dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision. AMP runs only on CUDA: on CPU
    autocast would mean bfloat16 matmuls, slower on most CPUs and less exact."""
    if mode not in ("auto", "on", "off", True, False):
        raise ValueError(f"train.amp must be auto, on or off, got {mode!r}")
    if mode in ("off", False):
        return None
    if device.type != "cuda":
        if mode in ("on", True):
            raise RuntimeError("train.amp=on needs a CUDA device; use amp=auto to run full precision elsewhere")
        return None
    if dtype not in ("float16", "bfloat16"):
        raise ValueError(f"train.amp_dtype must be float16 or bfloat16, got {dtype!r}")
    return getattr(torch, dtype)


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def configure(seed: int, deterministic: bool, threads: int | None) -> None:
    """Seed every generator and, if asked, make kernels deterministic (at some speed cost on GPU)."""
    if threads:
        # On a busy or small CPU fewer threads are often much faster: spinning workers
        # wait on each other when another process holds a core.
        torch.set_num_threads(int(threads))
        from pycrl import _C

        _C.set_num_threads(int(threads))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def rng_state() -> dict:
    """Every global RNG, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss),
                       float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
