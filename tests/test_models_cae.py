"""CAE: shapes and gradients for every encoder, its loss by hand, and the decoder left
out of eval, export and serving."""

import math

import numpy as np
import pytest
import torch

from pycrl.losses import create_loss
from pycrl.models import create_model
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)

LITE = {"widths": [8, 16, 16, 32, 48, 64, 96]}
ENCODERS = [  # encoder, its config, latent channels
    ("xception", {}, 2048),
    ("xception-lite", LITE, 96),
    ("tiny", {}, 64),
    ("efficientnet_lite0", {}, 1280),
]


def small(**cfg):
    torch.manual_seed(0)
    return create_model("cae", encoder="xception-lite", encoder_cfg=LITE, **cfg)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("encoder,encoder_cfg,latent", ENCODERS, ids=[e[0] for e in ENCODERS])
def test_forward_backward_for_each_encoder(encoder, encoder_cfg, latent):
    torch.manual_seed(0)
    m = create_model("cae", encoder=encoder, encoder_cfg=encoder_cfg).train()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = m(x)
    assert out["cls"].shape == (2, 2) and out["prob"].shape == (2,) and out["feat"].shape == (2, latent)
    assert out["recon"].shape == x.shape and out["recon"].abs().max() <= 1.0  # tanh output
    create_loss("cae")(out, {"image": x, "label": torch.tensor([0, 1])})["overall"].backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing  # CE reaches encoder + head, the reconstruction the decoder

    m.eval()
    with torch.no_grad():
        assert sorted(m(x)) == ["cls", "feat", "prob"]  # no decoder pass in eval mode
        assert m.reconstruct(x).shape == x.shape  # still available on request


def test_reconstruction_resized_to_odd_inputs():
    # tiny reduces 50 px to a 4 x 4 latent: 4 x2 stages give 64 px, resized back to 50
    m = create_model("cae", encoder="tiny", out_act="linear", upsample="nearest", num_classes=1).train()
    out = m(torch.rand(3, 3, 50, 50))
    assert out["recon"].shape == (3, 3, 50, 50) and out["cls"].shape == (3, 1)
    assert torch.equal(out["prob"], torch.sigmoid(out["cls"][:, 0]))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="upsample"):
        create_model("cae", encoder="tiny", upsample="bicubic")
    with pytest.raises(ValueError, match="out_act"):
        create_model("cae", encoder="tiny", out_act="sigmoid")
    with pytest.raises(ValueError, match="decoder_widths"):
        create_model("cae", encoder="tiny", decoder_widths=[16, 8])  # tiny needs 4 stages
    with pytest.raises(ValueError, match="recon_loss"):
        create_loss("cae", recon_loss="ssim")


def _tiny_case():
    cls = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    images = torch.tensor([[[[0.5, -0.5]]], [[[1.0, 0.0]]]])  # (2, 1, 1, 2)
    recon = torch.tensor([[[[0.0, -0.5]]], [[[0.5, 1.0]]]])  # differences 0.5, 0, 0.5, -1
    return {"cls": cls, "recon": recon}, {"image": images, "label": labels}


@pytest.mark.parametrize("kind,recon", [("mse", (0.25 + 0 + 0.25 + 1) / 4), ("l1", (0.5 + 0 + 0.5 + 1) / 4)])
def test_loss_matches_a_hand_computed_value(kind, recon):
    out, batch = _tiny_case()
    ce = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2  # both samples right
    terms = create_loss("cae", recon_weight=0.5, recon_loss=kind)(out, batch)
    assert terms["cls"].item() == pytest.approx(ce, abs=1e-6)
    assert terms["recon"].item() == pytest.approx(recon, abs=1e-6)  # every image, reals and fakes
    assert terms["overall"].item() == pytest.approx(ce + 0.5 * recon, abs=1e-6)


def test_loss_without_reconstruction_and_its_errors():
    out, batch = _tiny_case()
    ce_only = create_loss("cae", recon_weight=0.0)
    assert not ce_only.needs_image and sorted(ce_only(out, batch["label"])) == ["cls", "overall"]
    with pytest.raises(KeyError, match="training mode"):
        create_loss("cae")({"cls": out["cls"]}, batch)
    with pytest.raises(ValueError, match="input size"):
        create_loss("cae")({**out, "recon": out["recon"][..., :1]}, batch)


@pytest.fixture
def model_folder(tmp_path, monkeypatch):
    """A trained-looking small CAE saved as a model folder (decoder weights included)."""
    from pycrl import weights

    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    m = small().train()
    loss, opt = create_loss("cae"), torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(5):  # a few steps on a toy task (fake = brighter), so the score varies
        x = torch.rand(8, 3, 64, 64) * 2 - 1 + torch.tensor([0.0, 0.5] * 4).view(8, 1, 1, 1)
        opt.zero_grad()
        loss(m(x), {"image": x, "label": torch.tensor([0, 1] * 4)})["overall"].backward()
        opt.step()
    m.eval()
    return m, weights.save(m, tmp_path / "cae", {"input_size": [3, 64, 64]})


def test_export_drops_the_decoder(model_folder):
    onnx = pytest.importorskip("onnx")
    from pycrl.export import export_onnx

    m, folder = model_folder
    proto = onnx.load(str(export_onnx(folder).path))
    assert [o.name for o in proto.graph.output] == ["prob", "logits", "feat"]
    assert not any(n.op_type in ("ConvTranspose", "Tanh", "Resize") for n in proto.graph.node)
    assert not any(i.name.startswith("decoder.") for i in proto.graph.initializer)
    exported = sum(int(np.prod(i.dims)) for i in proto.graph.initializer)
    served = n_params(m.encoder) + n_params(m.head)
    # BatchNorm folds into the convolutions: at most the encoder + head, and far below
    # what any decoder weight would add.
    assert 0.9 * served <= exported <= served + sum(b.numel() for b in m.buffers())
    assert exported < served + 0.5 * n_params(m.decoder)
    assert (folder / "model.onnx").stat().st_size < 4 * (served + 0.5 * n_params(m.decoder))


def test_onnx_matches_torch_and_serves_through_the_detector(model_folder):
    pytest.importorskip("onnxruntime")
    import pycrl
    from pycrl.export import export_onnx
    from pycrl.runtime import open_backend

    m, folder = model_folder
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = m(x)
    export_onnx(folder)
    with open_backend("onnxruntime", folder) as net:
        got = net.run(x.numpy())
    assert np.ptp(ref["prob"].numpy()) > 1e-3  # the check below is not trivially true
    np.testing.assert_allclose(got["prob"], ref["prob"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got["logits"], ref["cls"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got["feat"], ref["feat"].numpy(), atol=1e-4, rtol=1e-4)
    assert "recon" not in got

    with pycrl.Detector(folder, backend="onnxruntime", heatmap_size=16) as det:
        np.testing.assert_allclose(det.score_batch(x.numpy()), ref["prob"].numpy(), atol=1e-4, rtol=1e-4)
        assert "heatmap" not in det.infer(x.numpy())  # nothing to draw without a decoder


def test_model_folder_round_trip(model_folder):
    from pycrl import weights

    m, folder = model_folder
    loaded = weights.load(folder)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["prob"], m(x)["prob"])
        torch.testing.assert_close(loaded.reconstruct(x), m.reconstruct(x))  # decoder weights kept
