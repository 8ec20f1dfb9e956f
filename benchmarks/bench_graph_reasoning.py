"""RECCE forward on CPU: vectorised GraphReasoning vs RECCE's per-location loop.

    python -m pytest benchmarks/bench_graph_reasoning.py --benchmark-enable

Measures, in one run, the whole RECCE forward (batch 32, 256 px by default)
and the GraphReasoning module alone on the activations of that forward, each
with both definitions (same weights): pytest-benchmark tables per variant,
then ``test_report_ratio`` prints looped/vectorised ratios from interleaved
runs (robust to background load drifting between the two tables).
Environment: PYCRL_BENCH_BATCH, PYCRL_BENCH_SIZE, PYCRL_BENCH_ROUNDS.
"""

import os
import statistics
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looped_graph_reasoning import with_looped_reasoning  # noqa: E402

from pycrl.models import create_model  # noqa: E402

BATCH = int(os.environ.get("PYCRL_BENCH_BATCH", 32))
SIZE = int(os.environ.get("PYCRL_BENCH_SIZE", 256))
ROUNDS = int(os.environ.get("PYCRL_BENCH_ROUNDS", 3))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    vectorised = create_model("recce").eval()
    looped = with_looped_reasoning(vectorised)
    x = torch.rand(BATCH, 3, SIZE, SIZE) * 2 - 1
    captured = {}

    def keep_inputs(module, args, output):  # returns None: output unchanged
        captured["args"] = args

    hook = vectorised.reasoning.register_forward_hook(keep_inputs)
    with torch.no_grad():
        out_v = vectorised(x)
        out_l = looped(x)
    hook.remove()
    # same model, same answer: the benchmark compares equals
    torch.testing.assert_close(out_v["cls"], out_l["cls"], rtol=1e-4, atol=1e-4)
    return {"vectorised": vectorised, "looped": looped, "x": x, "gr_args": captured["args"]}


def _run(benchmark, fn):
    with torch.no_grad():
        benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(batch=BATCH, size=SIZE, threads=torch.get_num_threads())


@pytest.mark.benchmark(group="recce-forward")
@pytest.mark.parametrize("variant", ["vectorised", "looped"])
def test_recce_forward(benchmark, setup, variant):
    model, x = setup[variant], setup["x"]
    _run(benchmark, lambda: model(x))


@pytest.mark.benchmark(group="graph-reasoning-module")
@pytest.mark.parametrize("variant", ["vectorised", "looped"])
def test_graph_reasoning_module(benchmark, setup, variant):
    module, args = setup[variant].reasoning, setup["gr_args"]
    _run(benchmark, lambda: module(*args))


def _paired_ratio(slow, fast, pairs):
    """Median over alternating (slow, fast) runs of slow/fast: background load
    on a shared machine then hits both sides of each pair alike."""
    ratios, times = [], {"slow": [], "fast": []}
    with torch.no_grad():
        slow(), fast()  # warm-up
        for _ in range(pairs):
            for key, fn in (("slow", slow), ("fast", fast)):
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
            ratios.append(times["slow"][-1] / times["fast"][-1])
    return statistics.median(ratios), statistics.median(times["slow"]), \
        statistics.median(times["fast"])


def test_report_ratio(setup, capsys, request):
    """The headline numbers: interleaved looped/vectorised timings."""
    opt = request.config.getoption
    if opt("benchmark_disable", False) and not opt("benchmark_enable", False):
        pytest.skip("benchmarks disabled (repo default): pass --benchmark-enable")
    x, args = setup["x"], setup["gr_args"]
    vec, loop = setup["vectorised"], setup["looped"]
    lines, medians = [], {}
    for what, slow, fast in (
            ("GraphReasoning module", lambda: loop.reasoning(*args), lambda: vec.reasoning(*args)),
            ("RECCE forward", lambda: loop(x), lambda: vec(x))):
        ratio, t_slow, t_fast = _paired_ratio(slow, fast, ROUNDS)
        medians[what] = t_slow
        lines.append(f"{what:>22}: looped {t_slow:.3f} s, vectorised {t_fast:.3f} s "
                     f"(medians) -> {ratio:.2f}x (median of {ROUNDS} interleaved pairs)")
    with capsys.disabled():
        print(f"\nGraphReasoning speed-up, RECCE batch {BATCH} at {SIZE}px, "
              f"{torch.get_num_threads()} threads:")
        print("\n".join(lines))
        # Amdahl: removing the loop entirely cannot beat forward / (forward - loop).
        share = medians["GraphReasoning module"] / medians["RECCE forward"]
        print(f"{'looped module share':>22}: {share:.1%} of the looped forward -> any GraphReasoning "
              f"rewrite speeds the forward up by at most {1 / (1 - share):.2f}x")
