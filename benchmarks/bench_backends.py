"""Network throughput of each inference backend on the same model.

RECCE (Xception encoder, decoder, graph reasoning) at 256 x 256, a batch of
32 normalised crops, every backend on all cores; the terminal summary gives
crops/s and the speed-up over eager torch.

Run: pytest benchmarks/bench_backends.py --benchmark-enable
Env: PYCRL_BENCH_BATCH (32), PYCRL_BENCH_ROUNDS (2; torch eager takes tens of
seconds per round on 2 cores, so a full run is a few minutes).
"""

import os

import numpy as np
import pytest
import torch

from pycrl import weights
from pycrl.models import create_model
from pycrl.export import export_onnx
from pycrl.runtime import BackendUnavailable, open_backend
from test_runtime_common import calibrate_batchnorm

BATCH = int(os.environ.get("PYCRL_BENCH_BATCH", "32"))
ROUNDS = int(os.environ.get("PYCRL_BENCH_ROUNDS", "2"))
SIZE = 256
GROUP = f"recce {SIZE}px batch {BATCH}"
CASES = [  # id, backend, options
    ("torch", "torch", {}),
    ("onnxruntime", "onnxruntime", {}),
    ("openvino-f32", "openvino", {"precision": "f32"}),
    ("openvino-bf16", "openvino", {"precision": "bf16"}),
]


class ThroughputSummary:
    """Terminal summary: crops/s per backend and the ratio to eager torch."""

    def pytest_terminal_summary(self, terminalreporter, config):
        session = getattr(config, "_benchmarksession", None)
        rows = [b for b in (getattr(session, "benchmarks", None) or []) if b.group == GROUP]
        by_id = {b.extra_info.get("backend_id"): b for b in rows}
        if "torch" not in by_id:
            return
        ref = BATCH / by_id["torch"].stats.median
        terminalreporter.write_sep("=", f"backend throughput, {GROUP} (median of rounds)")
        for case_id, _, _ in CASES:
            b = by_id.get(case_id)
            if b is None:
                continue
            rate = BATCH / b.stats.median
            terminalreporter.write_line(
                f"{case_id:>14}: {rate:7.1f} crops/s  {b.stats.median:7.2f} s/batch  "
                f"{rate / ref:5.2f}x torch eager  ({b.extra_info['device']})")


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    plugin = ThroughputSummary()
    request.config.pluginmanager.register(plugin, "pycrl-backend-throughput")
    yield
    # Stays registered until the session ends so the summary hook still runs.


@pytest.fixture(scope="module")
def recce_folder(tmp_path_factory):
    """RECCE with BatchNorm statistics calibrated on random crops, so
    activations have realistic scale (tiny ones can hit slow denormal paths)."""
    torch.manual_seed(0)
    model = calibrate_batchnorm(create_model("recce"), size=64)
    folder = weights.save(model, tmp_path_factory.mktemp("bench") / "recce")
    export_onnx(folder)
    return folder


@pytest.mark.parametrize("case_id,backend,options", CASES, ids=[c[0] for c in CASES])
def test_backend_throughput(benchmark, recce_folder, case_id, backend, options):
    try:
        net = open_backend(backend, recce_folder, **options)
    except BackendUnavailable as err:
        pytest.skip(str(err))
    x = (np.random.default_rng(0).random((BATCH, 3, SIZE, SIZE), dtype=np.float32) * 2 - 1)
    benchmark.group = GROUP
    benchmark.extra_info.update(backend_id=case_id, device=net.device, batch=BATCH)
    with net:
        out = benchmark.pedantic(net.run, args=(x,), rounds=ROUNDS, iterations=1,
                                 warmup_rounds=1)
    assert out["prob"].shape == (BATCH,)
