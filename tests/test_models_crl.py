"""CRL: outputs, gradients, the kernel-computed difference map, flags, export."""

import numpy as np
import pytest
import torch

from pycrl.models import create_model
from pycrl.models.crl import diff_map_torch


def small(**cfg):
    torch.manual_seed(0)
    return create_model("crl", encoder="lite", lite_widths=(8, 16, 16, 32, 48, 64, 96), **cfg)


def test_outputs_and_shapes():
    m = small().eval()
    out = m(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out["cls"].shape == (2, 2) and out["prob"].shape == (2,)
    assert out["feat"].shape == (2, 96) and out["recon"].shape == (2, 3, 64, 64)
    assert [tuple(v.shape[-2:]) for v in out["recon_views"]] == [(16, 16), (32, 32), (64, 64)]
    assert out["diff_map"].shape == (2, 1, 16, 16)
    assert [f.shape[1] for f in out["metric_feats"]] == [48, 24, 12]
    assert m.real_centre.shape == (96,)


def test_gradients_reach_every_trainable_part():
    m = small().train()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    out = m(x)
    (out["cls"].sum() + sum(v.abs().mean() for v in out["recon_views"])).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_difference_map_is_the_kernel_maths():
    m = small().eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = m(x)
        ref = diff_map_torch(x, out["recon_views"], m.view_weights, (16, 16))
    torch.testing.assert_close(out["diff_map"], ref, rtol=1e-5, atol=1e-6)


def test_classifier_gradient_flows_through_the_difference_map_to_the_decoder():
    m = small().train()
    out = m(torch.rand(2, 3, 64, 64) * 2 - 1)
    out["cls"][:, 1].sum().backward()  # classification only, as DeepfakeBench trains RECCE
    assert m.decoder8[0].weight.grad.abs().sum() > 0  # the full view reaches cls via JointGR / gating


@pytest.mark.parametrize("flags", [dict(joint_gr=False), dict(diff_gate=False), dict(joint_gr=False, diff_gate=False)])
def test_ablation_flags_build_and_run(flags):
    out = small(**flags).eval()(torch.rand(1, 3, 64, 64))
    assert out["prob"].shape == (1,)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="encoder"):
        create_model("crl", encoder="resnet")
    with pytest.raises(ValueError, match="view_weights"):
        create_model("crl", encoder="lite", view_weights=(1.0, 1.0))


def test_onnx_export_matches_torch(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    from pycrl import weights
    from pycrl.runtime import export_onnx, open_backend

    m = small().train()
    with torch.no_grad():  # realistic BatchNorm statistics, so outputs depend on the input
        for _ in range(3):
            m(torch.rand(8, 3, 64, 64) * 2 - 1)
    m.eval()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = m(x)
    weights.save(m, tmp_path / "crl", {"input_size": [3, 64, 64]})
    export_onnx(tmp_path / "crl")
    with open_backend("onnxruntime", tmp_path / "crl") as net:
        got = net.run(x.numpy())
    assert np.ptp(ref["prob"].numpy()) > 0  # the check below is not trivially true
    for key in ("prob", "feat", "recon"):
        np.testing.assert_allclose(got[key], ref[key].numpy(), atol=1e-4, rtol=1e-4)
