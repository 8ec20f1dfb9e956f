"""Network throughput on one backend: the measurement the table scripts share."""

from __future__ import annotations

import statistics
import time

import numpy as np


def crops_per_second(model, size: int, backend: str, batch: int = 32, rounds: int = 3) -> float:
    """Median crops/s of ``backend`` running ``model`` (a model folder or a torch detector)
    on a batch of random normalised ``size``² crops, after one warm-up batch."""
    from pycrl.runtime import open_backend

    net = open_backend(backend, model)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    net.run(x)  # warm-up (compilation, caches)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        net.run(x)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)
