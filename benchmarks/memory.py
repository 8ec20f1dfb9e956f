"""Peak extra memory of one call, measured in a fresh process.

The child builds the inputs, resets the kernel's resident-set high-water mark
(/proc/self/clear_refs), runs the step once and reports how far the peak rose
above the resident set it started from: the extra memory the step needed at
its worst moment (temporaries, saved activations, gradients), whichever
allocator produced it. Linux only; returns nan elsewhere.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing as mp
from pathlib import Path


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _child(module: str, setup: str, step: str, queue) -> None:
    mod = importlib.import_module(module)
    state = getattr(mod, setup)()
    try:
        # Give the setup's freed temporaries back to the OS, so that a step
        # reusing that heap memory faults it in again and is counted.
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        start = _status_kb("VmRSS")
    except OSError:
        queue.put(float("nan"))
        return
    getattr(mod, step)(state)
    queue.put((_status_kb("VmHWM") - start) / 1024.0)


def peak_extra_mb(module: str, setup: str, step: str) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(module, setup, step, queue))
    proc.start()
    proc.join(600)
    if proc.exitcode != 0:
        raise RuntimeError(f"memory probe {module}.{step} failed with exit code {proc.exitcode}")
    return queue.get(timeout=5)
