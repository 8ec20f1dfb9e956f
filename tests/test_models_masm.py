"""MASM: subspace split, regularisers, the selective layer mask, export by merging, and the
CLIP ViT that loads Hugging Face weights by key."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl import weights
from pycrl.losses import create_loss
from pycrl.models import create_backbone, create_model
from pycrl.models.layer_mask import GradientSNRMask
from pycrl.models.masm import MASM, PooledClassifier
from pycrl.models.subspace import SubspaceLayer, energy_rank, group_rank_for
from pycrl.weights import CheckpointError
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)

TINY_VIT = {"preset": None, "width": 32, "layers": 2, "heads": 4, "patch": 8, "image_size": 32, "mlp_dim": 64}
LITE_SIZE = 64


@pytest.fixture
def lite():
    """MASM on the ImageNet EfficientNet-Lite0 (the offline weights), 2 groups of rank 2."""
    torch.manual_seed(0)
    return create_model("masm", groups=2, group_rank=2, mask_warmup=1, mask_every=1, mask_top_k=3)


def vit_masm(**kw) -> MASM:
    torch.manual_seed(0)
    return create_model("masm", backbone="clip_vit", backbone_cfg=dict(TINY_VIT), groups=2, group_rank=2, **kw)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def nudge_factors(model: MASM, scale: float = 0.05, seed: int = 0) -> None:
    """Move every artifact subspace away from its SVD initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.subspace_layers():
            for p in layer.factors():
                p.add_(scale * torch.randn(p.shape, generator=gen))


def train_steps(model: MASM, loss, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr)
    model.train()
    for step in range(steps):
        opt.zero_grad()
        loss(model(x), y)["overall"].backward()
        model.after_backward(step)
        opt.step()


# -- the split ------------------------------------------------------------------------------

def test_split_reproduces_the_pretrained_layer_and_freezes_the_principal_part(lite):
    plain = create_backbone("efficientnet_lite0", pretrained=True).eval()
    x = images(2, LITE_SIZE)
    lite.eval()
    with torch.no_grad():
        ref = plain(x)
        got = lite.backbone(x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert len(lite.layer_names) == 32  # 15 expansions + 16 projections + the head conv
    layer = lite.backbone.get_submodule("_blocks.5._project_conv")
    assert isinstance(layer, SubspaceLayer) and layer.U.shape == (2, 80, 2) and layer.V.shape == (2, 240, 2)
    # the tail holds the smallest singular values, largest group first
    s = torch.linalg.svdvals(plain.get_submodule("_blocks.5._project_conv").weight.flatten(1).double())
    torch.testing.assert_close(layer.S.detach().double().flatten(), s[-4:], rtol=1e-4, atol=1e-6)


def test_rank_rules():
    assert group_rank_for(16, 4, group_rank=4) == 2  # tail capped at half the rank
    assert group_rank_for(320, 4, group_rank=4) == 4
    assert group_rank_for(1024, 1, principal_rank=1023) == 1  # Effort: r = 1023 of 1024
    assert group_rank_for(100, 4, principal_rank=90) == 2  # tail 10 -> 4 groups of 2 (r rounds up to 92)
    with pytest.raises(ValueError, match="fewer than 4"):
        group_rank_for(100, 4, principal_rank=98)
    s = torch.tensor([3.0, 2.0, 1.0, 0.5])  # energies 9, 4, 1, 0.25 of 14.25
    assert energy_rank(s, 0.6) == 1 and energy_rank(s, 0.9) == 2 and energy_rank(s, 0.99) == 4


def test_energy_mode_records_its_ranks_and_rebuilds(tmp_path):
    model = create_model("masm", groups=2, principal_energy=0.9, mask_mode="off")
    ranks = model.pycrl_config["group_ranks"]
    assert ranks == model.group_ranks and len(set(ranks.values())) > 1  # resolved layer by layer
    nudge_factors(model)
    weights.save(model, tmp_path / "m")
    back = weights.load(tmp_path / "m")
    assert back.group_ranks == ranks
    x = images(2, LITE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(back(x)["cls"], model.eval()(x)["cls"])


# -- training contract ----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["lite", "vit"])
def test_forward_backward_shapes_and_frozen_parts(lite, which):
    model = lite if which == "lite" else vit_masm()
    size = LITE_SIZE if which == "lite" else TINY_VIT["image_size"]
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(images(3, size))
    width = 1280 if which == "lite" else TINY_VIT["width"]
    assert out["cls"].shape == (3, 2) and out["prob"].shape == (3,)
    assert out["feat"].shape[:2] == (3, width)
    F.cross_entropy(out["cls"], torch.tensor([0, 1, 1])).backward()

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") or n.rsplit(".", 1)[1] in ("U", "S", "V") for n in trainable)
    for name, p in model.named_parameters():
        assert (p.grad is not None) == (name in trainable), name
        if name in trainable:
            assert p.grad.shape == p.shape and p.grad.abs().sum() > 0, name
    if which == "lite":  # BatchNorm normalises with batch statistics, its affine part frozen
        bn = model.backbone._bn0
        assert bn.training and not bn.weight.requires_grad
    counts = model.parameter_counts()
    assert counts["trainable"] == sum(model.get_parameter(n).numel() for n in trainable)
    assert counts["trainable"] < 0.15 * counts["total"]


def test_train_flags_open_norms_and_biases():
    model = vit_masm(train_norm=True, train_bias=True, train_head=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "backbone.vision_model.post_layernorm.weight" in trainable
    assert "backbone.vision_model.encoder.layers.0.self_attn.q_proj.base.bias" in trainable
    assert "head.weight" not in trainable
    assert "backbone.vision_model.encoder.layers.0.mlp.fc1.weight" not in trainable


def test_frozen_bn_statistics_stay_put():
    model = create_model("masm", freeze_bn_stats=True, mask_mode="off").train()
    bn = model.backbone._blocks[3]._bn1
    before = bn.running_mean.clone()
    model(images(4, LITE_SIZE))
    assert not bn.training and model.head.training and torch.equal(bn.running_mean, before)
    model.train(False)
    model.train()
    assert not bn.training


def gram_deviation(model: MASM) -> float:
    """max |FᵀF - I| over the stacked factors (all groups side by side) of every layer."""
    worst = 0.0
    for layer in model.subspace_layers():
        for factor in (layer.U, layer.V):
            flat = factor.detach().transpose(0, 1).reshape(factor.shape[1], -1)  # (n, K*g)
            worst = max(worst, float((flat.T @ flat - torch.eye(flat.shape[1])).abs().max()))
    return worst


def test_subspaces_stay_orthogonal_while_training():
    x, y = images(16, 32, seed=3), torch.arange(16) % 2
    drift = {}
    for orth_weight in (1.0, 0.0):
        model = vit_masm(mask_mode="off")
        loss = create_loss("masm", orth_weight=orth_weight, spec_weight=0.1)
        loss.attach(model)
        train_steps(model, loss, x, y, steps=30, lr=3e-3)
        drift[orth_weight] = gram_deviation(model)
        s0 = torch.stack([layer.ref_tail_sv for layer in model.subspace_layers()])
        s = torch.stack([layer.S.detach().flatten() for layer in model.subspace_layers()])
        assert (s - s0).abs().max() > 1e-3  # the subspaces did train
    # orthonormal within and across groups, thanks to L_orth (without it they drift ~0.2)
    assert drift[1.0] < 0.02 and drift[0.0] > 0.05, drift


# -- the selective layer mask ---------------------------------------------------------------

def test_mask_ranks_layers_by_gradient_snr():
    mask = GradientSNRMask(["steady", "noisy", "weak"], [50, 50, 50], top_k=1, warmup=5, every=5)
    gen = torch.Generator().manual_seed(0)
    for step in range(10):
        log = mask.update(step, [torch.ones(50) + 0.1 * torch.randn(50, generator=gen),
                                 torch.randn(50, generator=gen),
                                 0.01 * torch.randn(50, generator=gen)])
    assert mask.active.tolist() == [True, False, False] and mask.masked() == [1, 2]
    assert log["mask/active"] == 1.0 and log["mask/on/steady"] == 1.0 and log["mask/on/noisy"] == 0.0
    assert log["mask/snr/steady"] > 10 > log["mask/snr/noisy"]
    before = mask.grad_mean.clone()  # an fp16 overflow step is left out of the statistics
    mask.update(10, [torch.full((50,), float("inf")), torch.zeros(50), torch.zeros(50)])
    assert torch.equal(mask.grad_mean, before) and torch.isfinite(mask.snr).all()

    by_threshold = GradientSNRMask(["a", "b"], [4, 4], mode="threshold", threshold=1e9, warmup=1, every=1)
    by_threshold.update(0, [torch.ones(4), -torch.ones(4)])
    by_threshold.update(1, [torch.ones(4), torch.ones(4)])
    assert by_threshold.active.tolist() == [True, False]  # none passes: the best layer stays on


def test_masked_layers_do_not_move_and_unmasked_ones_do(lite):
    loss = create_loss("masm")
    loss.attach(lite)
    x, y = images(4, LITE_SIZE, seed=5), torch.tensor([0, 1, 0, 1])
    opt = torch.optim.Adam([p for p in lite.parameters() if p.requires_grad], 1e-3)
    lite.train()
    for step in range(2):  # step 0 gathers statistics (all on); step 1 applies the first mask
        before = {n: lite.backbone.get_submodule(n).U.detach().clone() for n in lite.layer_names}
        opt.zero_grad()
        loss(lite(x), y)["overall"].backward()
        log = lite.after_backward(step)
        opt.step()
    on = [n for n in lite.layer_names if log[f"mask/on/{n}"] == 1.0]
    assert len(on) == 3 and log["mask/active"] == 3.0
    assert on == [lite.layer_names[i] for i in torch.topk(lite.layer_mask.snr, 3).indices.sort().values]
    for name in lite.layer_names:
        moved = not torch.equal(lite.backbone.get_submodule(name).U.detach(), before[name])
        assert moved == (name in on), name


# -- the regularisers and the loss, by hand ---------------------------------------------------

def hand_layer() -> SubspaceLayer:
    """A 3x3 linear layer with K=2 groups of rank 1 whose factors are set by hand."""
    base = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.diag(torch.tensor([3.0, 2.0, 1.0])))
    layer = SubspaceLayer(base, groups=2, group_rank=1)
    with torch.no_grad():
        layer.U.copy_(torch.tensor([[[0.0], [1.0], [0.0]], [[0.0], [1.0], [1.0]]]))  # u0·u1 = 1, |u1|² = 2
        layer.S.copy_(torch.tensor([[2.0], [0.5]]))
        layer.V.copy_(torch.tensor([[[0.0], [1.0], [0.0]], [[0.0], [0.0], [1.0]]]))  # orthonormal
    return layer


def test_split_of_a_diagonal_weight():
    base = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.diag(torch.tensor([3.0, 2.0, 1.0])))
    layer = SubspaceLayer(base, groups=2, group_rank=1)
    torch.testing.assert_close(layer.base.weight.detach(), torch.diag(torch.tensor([3.0, 0.0, 0.0])))
    torch.testing.assert_close(layer.S.detach(), torch.tensor([[2.0], [1.0]]))
    assert float(layer.ref_sq_norm) == pytest.approx(14.0)
    torch.testing.assert_close(layer.weight(), torch.diag(torch.tensor([3.0, 2.0, 1.0])))


def test_orthogonality_by_hand():
    between, within = hand_layer().orthogonality()
    # U: sum over k≠l of (u_k·u_l)² = 2 * 1; within: (|u0|²-1)² + (|u1|²-1)² = 0 + 1. V: 0 and 0.
    assert float(between) == pytest.approx(2.0)
    assert float(within) == pytest.approx(1.0)


def test_spectral_terms_by_hand():
    layer = hand_layer()
    # W = diag(3, 0, 0) + 2 e2 e2ᵀ + 0.5 (e2 + e3) e3ᵀ = [[3,0,0],[0,2,0.5],[0,0,0.5]]
    torch.testing.assert_close(layer.weight().detach(), torch.tensor([[3.0, 0, 0], [0, 2, 0.5], [0, 0, 0.5]]))
    assert float(layer.spectral("fro")) == pytest.approx(abs((9 + 4 + 0.25 + 0.25) - 14.0))
    # the tail is A = [[2, 0.5], [0, 0.5]] on (e2, e3); AᵀA = [[4, 1], [1, 0.5]] has
    # eigenvalues (4.5 ± sqrt(4.5² - 4 * 1)) / 2, the squared singular values of A
    root = math.sqrt(4.5 ** 2 - 4.0)
    sv = math.sqrt((4.5 + root) / 2), math.sqrt((4.5 - root) / 2)
    expected = (sv[0] - 2.0) ** 2 + (sv[1] - 1.0) ** 2  # against the pretrained tail (2, 1)
    assert float(layer.spectral("sv")) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="spectral mode"):
        layer.spectral("nuclear")


class StubModel(nn.Module):
    def regularisers(self, spectral="fro"):
        assert spectral == "sv"
        return {"orth_between": torch.tensor(2.0), "orth_within": torch.tensor(1.0), "spec": torch.tensor(4.0)}


def test_masm_loss_by_hand():
    loss = create_loss("masm", orth_weight=0.5, spec_weight=0.25, spec_mode="sv")
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    out = {"cls": logits}
    with pytest.raises(RuntimeError, match="attach"):
        loss(out, torch.tensor([1, 0]))
    loss.attach(StubModel())
    terms = loss(out, torch.tensor([1, 0]))
    ce = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert float(terms["cls"]) == pytest.approx(ce, rel=1e-6)
    assert float(terms["orth"]) == pytest.approx(3.0) and float(terms["spec"]) == pytest.approx(4.0)
    assert float(terms["overall"]) == pytest.approx(ce + 0.5 * 3.0 + 0.25 * 4.0, rel=1e-6)
    within_off = create_loss("masm", orth_weight=0.5, spec_weight=0.0, orth_within=False, spec_mode="sv")
    within_off.attach(StubModel())
    assert float(within_off(out, torch.tensor([1, 0]))["overall"]) == pytest.approx(ce + 0.5 * 2.0, rel=1e-6)
    with pytest.raises(TypeError, match="MASM"):
        loss.attach(nn.Linear(1, 1))


def test_model_regularisers_average_the_layers():
    model = vit_masm()
    nudge_factors(model)
    reg = model.regularisers("fro")
    layers = model.subspace_layers()
    assert len(layers) == 2 * 4  # q, k, v, out of 2 blocks
    expected = torch.stack([layer.spectral("fro") for layer in layers]).mean()
    torch.testing.assert_close(reg["spec"], expected)
    torch.testing.assert_close(reg["orth_between"], torch.stack([la.orthogonality()[0] for la in layers]).mean())


# -- export ---------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["lite", "vit"])
def test_merged_model_equals_the_factored_one(lite, which):
    model = lite if which == "lite" else vit_masm()
    size = LITE_SIZE if which == "lite" else TINY_VIT["image_size"]
    nudge_factors(model, 0.02)
    model.eval()
    merged = model.inference_module()
    assert type(merged) is PooledClassifier and not merged.training
    assert not any(isinstance(m, SubspaceLayer) for m in merged.modules())
    kinds = {type(merged.backbone.get_submodule(n)) for n in model.layer_names}
    assert all(issubclass(k, (nn.Linear, nn.Conv2d)) for k in kinds)  # the backbone's own layer types
    x = images(3, size, seed=7)
    with torch.no_grad():
        a, b = model(x), merged(x)
    for key in ("cls", "prob", "feat"):
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-5)
    counts = model.parameter_counts()
    assert counts["exported"] == sum(p.numel() for p in merged.parameters())
    assert counts["exported"] < counts["total"]


@pytest.mark.parametrize("which", ["lite", "vit"])
def test_onnx_export_matches_torch_and_is_served_by_the_detector(tmp_path, monkeypatch, lite, which):
    pytest.importorskip("onnx", reason="package onnx not installed: export untested")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    import pycrl
    from pycrl.export import export_onnx
    from pycrl.runtime import open_backend

    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    model = lite if which == "lite" else vit_masm()
    size = LITE_SIZE if which == "lite" else TINY_VIT["image_size"]
    nudge_factors(model, 0.02, seed=1)
    model.eval()
    folder = weights.save(model, tmp_path / which, {"input_size": [3, size, size]})
    exported = export_onnx(folder)
    x = images(3, size, seed=9)
    with torch.no_grad():
        expected = model(x)
    with open_backend("onnxruntime", folder, threads=1) as ort:
        got = ort.run(x.numpy())
    np.testing.assert_allclose(got["prob"], expected["prob"].numpy(), atol=1e-4)
    np.testing.assert_allclose(got["logits"], expected["cls"].numpy(), atol=1e-4)

    import onnx

    proto = onnx.load(str(exported.path))
    stored = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert stored <= model.parameter_counts()["exported"] + 10_000  # plain weights, no factors
    with pycrl.Detector(folder, backend="onnxruntime") as det:
        prob = det.score_batch(x.numpy())
    np.testing.assert_allclose(prob, expected["prob"].numpy(), atol=1e-4)


# -- the CLIP ViT and Hugging Face weights ------------------------------------------------------

def hf_clip_state(width=32, layers=2, patch=8, image_size=32, mlp_dim=64, seed=0, text=True):
    """A random state dict in Hugging Face ``CLIPModel`` key layout, written from HF's naming."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: 0.2 * torch.randn(*s, generator=gen)  # noqa: E731
    tokens = (image_size // patch) ** 2 + 1
    p = "vision_model."
    state = {p + "embeddings.class_embedding": r(width),
             p + "embeddings.patch_embedding.weight": r(width, 3, patch, patch),
             p + "embeddings.position_embedding.weight": r(tokens, width),
             p + "embeddings.position_ids": torch.arange(tokens)[None],  # older transformers saved it
             p + "pre_layrnorm.weight": 1 + r(width), p + "pre_layrnorm.bias": r(width),
             p + "post_layernorm.weight": 1 + r(width), p + "post_layernorm.bias": r(width)}
    for i in range(layers):
        q = f"{p}encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[f"{q}self_attn.{proj}.weight"], state[f"{q}self_attn.{proj}.bias"] = r(width, width), r(width)
        for ln in ("layer_norm1", "layer_norm2"):
            state[f"{q}{ln}.weight"], state[f"{q}{ln}.bias"] = 1 + r(width), r(width)
        state[f"{q}mlp.fc1.weight"], state[f"{q}mlp.fc1.bias"] = r(mlp_dim, width), r(mlp_dim)
        state[f"{q}mlp.fc2.weight"], state[f"{q}mlp.fc2.bias"] = r(width, mlp_dim), r(width)
    if text:  # a full CLIPModel file also holds the text tower and the projections
        state.update({"text_model.embeddings.token_embedding.weight": r(10, width),
                      "visual_projection.weight": r(16, width), "logit_scale": torch.tensor(2.6)})
    return state


def heads_first(z, heads):
    """(B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = z.shape
    return z.reshape(b, n, heads, c // heads).transpose(1, 2)


def reference_clip(state, x, heads):
    """CLIP's vision forward written straight from the HF state dict (pooler_output)."""
    p = "vision_model."
    g = lambda k: state[p + k]  # noqa: E731
    ln = lambda t, k: F.layer_norm(t, t.shape[-1:], g(k + ".weight"), g(k + ".bias"), 1e-5)  # noqa: E731
    lin = lambda t, k: t @ g(k + ".weight").T + g(k + ".bias")  # noqa: E731
    emb = F.conv2d(x, g("embeddings.patch_embedding.weight"), stride=g("embeddings.patch_embedding.weight").shape[-1])
    emb = emb.flatten(2).transpose(1, 2)
    cls = g("embeddings.class_embedding").expand(x.shape[0], 1, -1)
    h = ln(torch.cat([cls, emb], 1) + g("embeddings.position_embedding.weight"), "pre_layrnorm")
    i = 0
    while f"{p}encoder.layers.{i}.mlp.fc1.weight" in state:
        a = f"encoder.layers.{i}."
        t = ln(h, a + "layer_norm1")
        q, k, v = (heads_first(lin(t, a + f"self_attn.{w}_proj"), heads) for w in "qkv")
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
        h = h + lin(att.transpose(1, 2).reshape(t.shape), a + "self_attn.out_proj")
        t = lin(ln(h, a + "layer_norm2"), a + "mlp.fc1")
        h = h + lin(t * torch.sigmoid(1.702 * t), a + "mlp.fc2")
        i += 1
    return ln(h[:, 0], "post_layernorm")


def test_clip_vit_loads_hf_weights_by_key(tmp_path):
    from safetensors.torch import save_file

    state = hf_clip_state()
    path = tmp_path / "clip.safetensors"
    save_file(state, str(path))
    vit = create_backbone("clip_vit", **{**TINY_VIT, "pretrained": str(path)}).eval()
    own = vit.state_dict()
    for key, value in state.items():
        if key.startswith("vision_model.") and "position_ids" not in key:
            torch.testing.assert_close(own[key], value)
    x = images(2, 32, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), reference_clip(state, x, heads=4), rtol=1e-4, atol=1e-4)
    # transformers >= 5 saves CLIPVisionModel without the vision_model. prefix
    bare = {k[len("vision_model."):]: v for k, v in state.items() if k.startswith("vision_model.")}
    again = create_backbone("clip_vit", **{**TINY_VIT, "pretrained": _saved(tmp_path / "bare.st", bare)})
    assert all(torch.equal(again.state_dict()[k], v) for k, v in own.items())
    # and through MASM, whose config then reloads without the file
    model = create_model("masm", backbone="clip_vit", backbone_cfg={**TINY_VIT, "pretrained": str(path)},
                         groups=1, principal_rank=31)
    assert all(layer.S.numel() == 1 for layer in model.subspace_layers())  # Effort: one component
    with torch.no_grad():
        torch.testing.assert_close(model.backbone(x), reference_clip(state, x, heads=4), rtol=1e-4, atol=1e-4)
    assert model.pycrl_config["backbone_cfg"]["pretrained"] == str(path)


def test_clip_vit_rejects_wrong_weights_clearly(tmp_path):
    from safetensors.torch import save_file

    wrong_width = tmp_path / "b.safetensors"
    save_file(hf_clip_state(width=48), str(wrong_width))
    with pytest.raises(CheckpointError, match=r"shape mismatches.*patch_embedding.*CLIP ViT with"):
        create_backbone("clip_vit", **{**TINY_VIT, "pretrained": str(wrong_width)})
    fewer_layers = {k: v for k, v in hf_clip_state(text=False).items() if ".layers.1." not in k}
    with pytest.raises(CheckpointError, match=r"missing keys: \['vision_model.encoder.layers.1"):
        create_backbone("clip_vit", **{**TINY_VIT, "pretrained": _saved(tmp_path / "c.st", fewer_layers)})
    openai_layout = {"visual.conv1.weight": torch.zeros(32, 3, 8, 8)}
    with pytest.raises(CheckpointError, match="no 'embeddings.patch_embedding.weight' key, so not one Hugging"):
        create_backbone("clip_vit", **{**TINY_VIT, "pretrained": _saved(tmp_path / "d.st", openai_layout)})
    with pytest.raises(ValueError, match="ships no weights"):
        create_backbone("clip_vit", pretrained=True)
    with pytest.raises(ValueError, match="built for 32 px"):
        create_backbone("clip_vit", **TINY_VIT)(torch.zeros(1, 3, 48, 48))


def _saved(path, state) -> str:
    from safetensors.torch import save_file

    save_file(state, str(path))
    return str(path)


def test_clip_presets():
    from pycrl.models.vit import PRESETS, resolve_geometry

    assert resolve_geometry("vit_l14") == PRESETS["vit_l14"] == {
        "width": 1024, "layers": 24, "heads": 16, "patch": 14, "image_size": 224, "mlp_dim": 4096}
    assert resolve_geometry("vit_b16", layers=2)["layers"] == 2
    with torch.device("meta"):  # ViT-L/14 at full size, without allocating it
        vit = create_backbone("clip_vit", preset="vit_l14")
    assert sum(p.numel() for p in vit.parameters()) == 303_179_776  # HF CLIPVisionModel ViT-L/14
    assert vit.input_meta["input_size"] == [3, 224, 224]
    with pytest.raises(ValueError, match="unknown CLIP ViT preset"):
        resolve_geometry("vit_h14")


def test_matches_transformers_when_installed():
    transformers = pytest.importorskip("transformers", reason="transformers not installed: no HF cross-check")
    cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, patch_size=8, image_size=32)
    torch.manual_seed(0)
    hf = transformers.CLIPVisionModel(cfg).eval()
    vit = create_backbone("clip_vit", **{**TINY_VIT, "pretrained": _dict_source(hf.state_dict())}).eval()
    x = images(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), hf(pixel_values=x).pooler_output, rtol=1e-4, atol=1e-4)


def _dict_source(state):
    import tempfile

    from safetensors.torch import save_file

    path = tempfile.mkstemp(suffix=".safetensors")[1]
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    return path
