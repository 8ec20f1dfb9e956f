"""Backends behind one interface: OpenVINO f32/bf16 against eager torch, its
compiled-model cache, ``auto`` selection and BackendUnavailable reasons."""

import sys

import numpy as np
import pytest
import torch

from pycrl import weights
from pycrl.export import export_onnx
from pycrl.runtime import AUTO_ORDER, Backend, BackendUnavailable, open_backend
from test_runtime_common import (SIZE, assert_outputs_close, batch, one_torch_thread,  # noqa: F401
                                 private_cache, saved_detector)

pytest.importorskip("onnx", reason="package onnx not installed: nothing to export")


@pytest.fixture(scope="module")
def recce(tmp_path_factory):
    """RECCE (the realistic model: reconstruction + graph reasoning) at 64 px,
    exported once, with its torch outputs on a 3-sample batch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope runs before the per-test fixture
    try:
        folder = saved_detector(tmp_path_factory.mktemp("recce") / "m", "recce")
        export_onnx(folder)
        x = batch(3)
        with open_backend("torch", folder) as ref:
            return folder, x, ref.run(x)
    finally:
        torch.set_num_threads(threads)


def _openvino_or_skip(precision="f32"):
    ov = pytest.importorskip("openvino", reason="openvino not installed")
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if precision == "bf16" and "BF16" not in caps:
        pytest.skip("this CPU has no native bf16 (no AVX-512 BF16 / AMX)")


def test_openvino_f32_matches_torch(recce):
    _openvino_or_skip()
    folder, x, expected = recce
    with open_backend("openvino", folder, precision="f32", threads=1) as net:
        assert isinstance(net, Backend) and net.device == "CPU (f32)"
        assert net.input_shape == (3, SIZE, SIZE)
        assert net.output_names == ("prob", "logits", "feat", "recon")
        assert_outputs_close(net.run(x), expected, 1e-4, "openvino f32")
        assert_outputs_close(net.run(x[:1]), {k: v[:1] for k, v in expected.items()}, 1e-4,
                             "openvino f32, batch 1")


def test_openvino_bf16_within_stated_tolerance(recce):
    """bf16 keeps 8 mantissa bits (relative step 2^-8 per rounding), and the
    rounding compounds over RECCE's ~40 layers: we accept 0.03 on the fake
    probability and 15% of the output's range on logits, features and
    reconstruction (measured: ~0.003-0.013 and ~6-11%)."""
    _openvino_or_skip("bf16")
    folder, x, expected = recce
    with open_backend("openvino", folder, threads=1) as net:  # auto: bf16 where native
        assert net.device == "CPU (bf16)"
        got = net.run(x)
    assert np.abs(got["prob"] - expected["prob"]).max() <= 0.03
    assert_outputs_close({k: got[k] for k in ("logits", "feat", "recon")},
                         {k: expected[k] for k in ("logits", "feat", "recon")}, 0.15, "bf16")
    # ...and it really ran in reduced precision.
    assert np.abs(got["feat"] - expected["feat"]).max() > 1e-4


def test_openvino_caches_compiled_model_per_graph_key(tmp_path):
    _openvino_or_skip()
    folder = saved_detector(tmp_path / "m", "classifier", backbone="tiny")
    first = export_onnx(folder)
    blobs = folder / "openvino" / "model"
    with open_backend("openvino", folder, precision="f32", threads=1):
        pass
    assert [p.name for p in blobs.iterdir()] == [first.key]
    cached = sorted((blobs / first.key).iterdir())
    assert cached, "OpenVINO wrote no compiled blob"
    with open_backend("openvino", folder, precision="f32", threads=1):
        pass
    assert sorted((blobs / first.key).iterdir()) == cached  # reused, not recompiled

    model = weights.load(folder)  # new weights -> new graph -> the old blobs go
    with torch.no_grad():
        model.head.bias.add_(1.0)
    weights.save(model, folder, {"input_size": [3, SIZE, SIZE]})
    x = batch(2)
    with open_backend("openvino", folder, precision="f32", threads=1) as net, \
            open_backend("torch", folder) as ref:
        assert_outputs_close(net.run(x), ref.run(x), 1e-4, "after a weight change")
    assert [p.name for p in blobs.iterdir()] == [export_onnx(folder).key]


def _block(monkeypatch, *modules):
    """Make these packages unimportable, as on a machine without them."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_auto_falls_back_in_order(recce, monkeypatch):
    folder, x, expected = recce
    first_usable = None
    for name in AUTO_ORDER:
        try:
            open_backend(name, folder).close()
        except BackendUnavailable:
            continue
        first_usable = name
        break
    with open_backend("auto", folder, precision="f32", threads=1) as net:
        assert net.name == first_usable
        assert_outputs_close(net.run(x), expected, 1e-4, f"auto -> {net.name}")

    _block(monkeypatch, "tensorrt", "openvino")
    with open_backend("auto", folder, threads=1) as net:
        assert net.name == "onnxruntime"
    _block(monkeypatch, "onnxruntime")
    with open_backend("auto", folder, threads=1) as net:
        assert net.name == "torch"
        assert_outputs_close(net.run(x), expected, 1e-5, "auto -> torch")
    _block(monkeypatch, "torch")
    with pytest.raises(BackendUnavailable) as err:
        open_backend("auto", folder)
    assert err.value.backend == "auto"
    for name in AUTO_ORDER:  # every reason is reported
        assert f"{name}: " in err.value.reason
    assert "onnxruntime is not importable" in err.value.reason


def test_unavailable_backends_say_why(recce):
    folder, _, _ = recce
    with pytest.raises(BackendUnavailable) as err:
        open_backend("tensorrt", folder)
    assert err.value.backend == "tensorrt" and err.value.reason
    assert str(err.value).startswith("backend 'tensorrt' is unavailable: ")

    for name, options, why in [
        ("onnxruntime", {"precision": "bf16"}, "runs f32 only, not bf16"),
        ("onnxruntime", {"device": "cuda"}, "CPU provider"),
        ("torch", {"precision": "fp16"}, "runs f32 only, not fp16"),
        ("openvino", {"device": "NPU.7"}, "no OpenVINO device"),
    ]:
        with pytest.raises(BackendUnavailable, match=why):
            open_backend(name, folder, **options)
    with pytest.raises(BackendUnavailable, match="not an ONNX graph"):
        open_backend("torch", folder / "model.onnx")
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        open_backend("tflite", folder)
    with pytest.raises(TypeError, match="no backend takes"):
        open_backend("auto", folder, colour="red")


def test_openvino_refuses_precision_the_cpu_lacks(recce):
    ov = pytest.importorskip("openvino", reason="openvino not installed")
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    missing = [p for p, cap in (("fp16", "FP16"), ("bf16", "BF16")) if cap not in caps]
    if not missing:
        pytest.skip(f"this CPU runs every precision ({caps})")
    with pytest.raises(BackendUnavailable, match=f"no native {missing[0]}"):
        open_backend("openvino", recce[0], precision=missing[0])


def test_run_checks_its_input(recce):
    folder, x, _ = recce
    net = open_backend("onnxruntime", folder, threads=1)
    with pytest.raises(TypeError, match="normalised"):
        net.run((x * 127 + 128).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        net.run(x[:, :, :32])
    with pytest.raises(ValueError, match="empty"):
        net.run(x[:0])
    out = net.run(x.astype(np.float64))  # converted, not rejected
    assert out["prob"].dtype == np.float32
    out["prob"][:] = -1  # caller-owned: must not alias the runtime's buffers
    assert (net.run(x)["prob"] >= 0).all()
    net.close()
    with pytest.raises(RuntimeError, match="closed"):
        net.run(x)
