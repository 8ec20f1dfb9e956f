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
        cand_name = next((k for k in ("fused", "pycrl", "yunet") if k in impls), None)
        ref_name = next((k for k in ("torch", "naive", "dlib") if k in impls), None)
        if cand_name is None or ref_name is None:
            continue
        cand, ref = impls[cand_name], impls[ref_name]
        fused = cand
        ratio = ref.stats.median / fused.stats.median
        mem = ""
        if "peak_extra_mb" in fused.extra_info and "peak_extra_mb" in ref.extra_info:
            mem = f"; peak extra memory {fused.extra_info['peak_extra_mb']:.0f} MB fused vs {ref.extra_info['peak_extra_mb']:.0f} MB torch"
        lines.append(
            f"{group}: {ref_name} {ref.stats.median * 1e3:.1f} ms, {cand_name} {fused.stats.median * 1e3:.1f} ms "
            f"(median) -> {ratio:.2f}x{mem}"
        )
    if lines:
        terminalreporter.write_sep("=", "pycrl vs reference, same inputs, same run")
        for line in lines:
            terminalreporter.write_line(line)
