"""TensorRT: engines on a GPU when there is one (skipped with the reason
otherwise), and a static check of the TensorRT code against its type stubs,
which runs anywhere the stubs are installed."""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pycrl import environment
from pycrl.runtime import BackendUnavailable, open_backend
from test_runtime_common import (SIZE, assert_outputs_close, batch, one_torch_thread,  # noqa: F401
                                 private_cache, saved_detector)

ROOT = Path(__file__).resolve().parents[1]
TRT_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pycrl" / "runtime").glob("tensorrt*.py"))


@pytest.fixture
def gpu_folder(tmp_path):
    probe = environment.tensorrt_backend()
    if not probe.usable:
        pytest.skip(f"TensorRT cannot run here: {probe.detail}")
    return saved_detector(tmp_path / "m", "classifier", backbone="tiny")


def test_tensorrt_says_why_it_cannot_run():
    probe = environment.tensorrt_backend()
    if probe.usable:
        pytest.skip("TensorRT is usable here; the GPU tests below cover it")
    with pytest.raises(BackendUnavailable) as err:
        open_backend("tensorrt", "unused: the probe fails first")
    assert err.value.backend == "tensorrt" and err.value.reason == probe.detail


def test_fp16_engine_matches_torch_and_is_cached(gpu_folder):
    x = batch(5)
    with open_backend("torch", gpu_folder) as ref:
        expected = ref.run(x)
    with open_backend("tensorrt", gpu_folder, max_batch=4) as net:
        assert net.engine_built and net.precision == "fp16"
        name = net.engine_path.name
        assert re.search(r"-sm\d+-trt\d", name), name
        got = net.run(x)  # 5 > max_batch: split into 4 + 1
    assert np.abs(got["prob"] - expected["prob"]).max() <= 0.01
    assert_outputs_close(got, expected, 0.05, "tensorrt fp16")
    with open_backend("tensorrt", gpu_folder, max_batch=4) as again:
        assert not again.engine_built and again.engine_path.name == name


def test_f32_engine_and_device_pointer_entry(gpu_folder):
    cuda = pytest.importorskip("pycuda.driver")
    x = batch(3)
    with open_backend("torch", gpu_folder) as ref:
        expected = ref.run(x)
    with open_backend("tensorrt", gpu_folder, precision="f32", max_batch=8) as net:
        assert_outputs_close(net.run(x), expected, 1e-3, "tensorrt f32")
        net._ctx.push()  # what DALI's output would be: a batch already on the GPU
        try:
            on_gpu = cuda.mem_alloc(x.nbytes)
            cuda.memcpy_htod(on_gpu, x)
            got = net.run_device(int(on_gpu), len(x))
            on_gpu.free()
        finally:
            net._ctx.pop()
        assert_outputs_close(got, expected, 1e-3, "tensorrt f32 from a device pointer")


def _repaired_stubs(dest: Path) -> Path:
    """A copy of the installed tensorrt-stubs that mypy can read.

    The stubs are generated from the bindings and ship three defects that
    stop mypy: parameters named ``in`` (a keyword), one parameter without a
    default after defaulted ones, and a module-level ``bool`` (the DataType)
    that shadows the builtin in every annotation. They install into
    ``tensorrt/`` without a py.typed marker, so mypy ignores them in
    site-packages anyway; a repaired copy on MYPYPATH is what it checks against.
    """
    dist = importlib.metadata.distribution("tensorrt-stubs")
    for file in dist.files or []:
        if file.suffix == ".pyi":
            target = dest / file
            target.parent.mkdir(parents=True, exist_ok=True)
            text = Path(file.locate()).read_text(encoding="utf-8")
            text = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)
            text = re.sub(r"(, channel_axis: int)\)", r"\1 = ...)", text)
            text = re.sub(r"^bool: ", "bool_: ", text, flags=re.M)
            try:
                ast.parse(text)
            except SyntaxError as err:
                pytest.skip(f"tensorrt-stubs {dist.version} has defects this repair does not "
                            f"cover ({file}:{err.lineno}: {err.msg})")
            target.write_text(text, encoding="utf-8")
    (dest / "tensorrt_libs.pyi").write_text("", encoding="utf-8")  # imported, not stubbed
    return dest


def test_tensorrt_code_type_checks_against_the_stubs(tmp_path):
    pytest.importorskip("mypy", reason="mypy not installed: pip install mypy")
    try:
        importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensorrt-stubs not installed (pip install --no-deps tensorrt-stubs)")
    assert TRT_FILES == ["pycrl/runtime/tensorrt_backend.py", "pycrl/runtime/tensorrt_build.py"]
    stubs = _repaired_stubs(tmp_path / "stubs")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / "mypy-cache"), *TRT_FILES],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"})
    ours = [line for line in done.stdout.splitlines() if line.startswith("pycrl/")]
    assert not ours, "\n".join(ours)
    assert "tensorrt_build.py" not in done.stderr, done.stderr
