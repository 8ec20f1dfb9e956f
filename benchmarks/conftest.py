"""Shared benchmark plumbing: the torch reference from tests/, and a summary
that prints each group's reference/fused time ratio and peak extra memory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benches = getattr(session, "benchmarks", None) or []
    groups: dict = {}
    for b in benches:
        impl = (b.param or "").split("-")[0] or b.name
        groups.setdefault(b.group, {})[impl] = b
    lines = []
    for group, impls in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if "fused" not in impls or "torch" not in impls:
            continue
        fused, ref = impls["fused"], impls["torch"]
        ratio = ref.stats.median / fused.stats.median
        mem = ""
        if "peak_extra_mb" in fused.extra_info and "peak_extra_mb" in ref.extra_info:
            mem = f"; peak extra memory {fused.extra_info['peak_extra_mb']:.0f} MB fused vs {ref.extra_info['peak_extra_mb']:.0f} MB torch"
        lines.append(
            f"{group}: torch {ref.stats.median * 1e3:.1f} ms, fused {fused.stats.median * 1e3:.1f} ms (median) -> {ratio:.2f}x{mem}"
        )
    if lines:
        terminalreporter.write_sep("=", "fused kernels vs torch reference")
        for line in lines:
            terminalreporter.write_line(line)
