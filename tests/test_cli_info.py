"""`pycrl info` reports every capability, usable or not, with a reason."""

import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "pycrl.cli", *args], capture_output=True, text=True, timeout=120)


def test_info_json_lists_every_capability_with_a_reason():
    out = run("info", "--json")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    caps = {c["name"]: c for c in rep["capabilities"]}
    assert {"kernels", "cuda", "openvino", "onnxruntime", "torch", "tensorrt", "dali", "serve", "c2pa", "ray"} <= set(caps)
    assert caps["kernels"]["usable"]
    for cap in caps.values():
        assert cap["detail"], f"{cap['name']} gives no detail"


def test_info_table_and_help():
    out = run("info")
    assert out.returncode == 0 and "kernels" in out.stdout
    helped = run("--help")
    assert "examples:" in helped.stdout and "info" in helped.stdout
    assert run().returncode == 2  # no command: usage, non-zero
