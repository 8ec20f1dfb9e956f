"""Where the full networks spend their time on OpenVINO (CPU), per operation type, against the
Xception classifier they are built on, in one run.

    python benchmarks/profile_network.py [--batch 32] [--rounds 5] [--size 256]

For the Xception classifier, the full CRL (Xception encoder, decoder, multi-view reconstruction,
JointGR) and RECCE, at ``size``² and batch ``batch``: crops/s (median of interleaved rounds,
LATENCY hint, bf16 where the CPU has it), the ratio to the classifier, per-op-type time from
OpenVINO's performance counters (the ops that grow from classifier to full network are what the
extra parts cost), GFLOPs per crop counted from the ONNX graph (Conv, MatMul, Gemm), and the
THROUGHPUT hint with several infer requests in flight.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def export(spec: str, size: int, folder: Path) -> Path:
    """``spec``: a registry name, optionally with constructor options (``crl:full_view=subpixel``)."""
    import torch

    from pycrl import weights
    from pycrl.export import export_onnx
    from pycrl.models import create_model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_runtime_common import calibrate_batchnorm

    name, _, opts = spec.partition(":")
    kwargs = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
    torch.manual_seed(0)
    model = calibrate_batchnorm(create_model(name, **kwargs), size=64)
    model.pycrl_meta = {**model.default_meta, "input_size": [3, size, size]}
    out = weights.save(model, folder / spec.replace(":", "_").replace("=", "-").replace(",", "_"))
    export_onnx(out)
    return out / "model.onnx"


def gflops(onnx_path: Path, size: int) -> float:
    """Multiply-adds x 2 of Conv, MatMul and Gemm per crop, from shapes inferred at batch 1."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(onnx_path))
    inp = model.graph.input[0].type.tensor_type.shape.dim
    inp[0].dim_value, inp[2].dim_value, inp[3].dim_value = 1, size, size
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)}
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    total = 0.0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits.get(node.input[1]) or shapes.get(node.input[1])
            out = shapes.get(node.output[0])
            if w and out:
                total += 2.0 * np.prod(out[1:]) * np.prod(w[1:])
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shapes.get(node.input[0]) or inits.get(node.input[0]), \
                shapes.get(node.input[1]) or inits.get(node.input[1])
            out = shapes.get(node.output[0])
            if a and b and out:
                k = a[-1] if node.op_type == "MatMul" else (a[-1] if not any(
                    at.name == "transA" and at.i for at in node.attribute) else a[-2])
                total += 2.0 * np.prod(out) * k
    return total / 1e9


def profile(onnx_path: Path, x: np.ndarray, precision: str) -> dict:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(onnx_path), "CPU", {"PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY",
                                                         "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    request.infer({0: x})
    request.infer({0: x})
    by_type: dict[str, float] = collections.defaultdict(float)
    nodes = []
    for info in request.get_profiling_info():
        ms = info.real_time.total_seconds() * 1e3
        by_type[info.node_type] += ms
        nodes.append((ms, info.node_name, info.node_type, info.exec_type))
    nodes.sort(reverse=True)
    return {"by_type_ms": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "top_nodes": [{"ms": round(m, 2), "node": n, "type": t, "exec": e} for m, n, t, e in nodes[:15]]}


def rates(paths: dict[str, Path], x: np.ndarray, precision: str, rounds: int, hint: str = "LATENCY",
          requests: int = 1) -> dict[str, float]:
    """crops/s per model, rounds interleaved so that load drifts hit every model alike."""
    import openvino as ov

    core = ov.Core()
    compiled = {k: core.compile_model(str(p), "CPU", {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision})
                for k, p in paths.items()}
    queues = {k: ov.AsyncInferQueue(c, requests) for k, c in compiled.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for q in queues.values():  # warm-up
        q.start_async({0: x})
        q.wait_all()
    for _ in range(rounds):
        for k, q in queues.items():
            t0 = time.perf_counter()
            for _ in range(requests):
                q.start_async({0: x})
            q.wait_all()
            times[k].append((time.perf_counter() - t0) / requests)
    return {k: len(x) / statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--models", nargs="+", default=["xception", "crl", "recce"])
    p.add_argument("--precision", default="bf16")
    p.add_argument("--skip-profile", action="store_true")
    args = p.parse_args(argv)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, 3, args.size, args.size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {m: export(m, args.size, Path(tmp)) for m in args.models}
        out: dict = {"batch": args.batch, "size": args.size, "precision": args.precision,
                     "gflops_per_crop": {m: round(gflops(pth, args.size), 2) for m, pth in paths.items()}}
        out["latency_crops_per_s"] = rates(paths, x, args.precision, args.rounds)
        out["throughput_2req_crops_per_s"] = rates(paths, x, args.precision, args.rounds, "THROUGHPUT", 2)
        if not args.skip_profile:
            out["profile"] = {m: profile(pth, x, args.precision) for m, pth in paths.items()}
    base = args.models[0]
    for key in ("latency_crops_per_s", "throughput_2req_crops_per_s"):
        r = out[key]
        out[key.replace("crops_per_s", "ratio_to_" + base)] = {m: round(v / r[base], 3) for m, v in r.items()}
    f = out["gflops_per_crop"]
    out["flop_bound_ratio_to_" + base] = {m: round(f[base] / f[m], 3) for m in f}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
