"""RECCE: vectorised GraphReasoning against a literal per-location loop,
GuidedAttention, and the detector's outputs, gradients and config flags."""

import pytest
import torch
import torch.nn.functional as F

from pycrl.models import GraphReasoning, GuidedAttention, Recce, create_model
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)


def looped_graph_reasoning(gr: GraphReasoning, va, vb, vc):
    """Reference: docs/methods.md §2.3 read literally, one coarse location at a time.

    For location (i, j) the children are the r x r patch of the finer map at
    rows i*r..i*r+r-1, cols j*r..j*r+r-1 (row-major), embedded by the
    two-layer MLP; attention = softmax over children of ReLU(Linear([a; b]));
    the weighted sum is gated by 1 - sigmoid(conv(a)).
    """
    emb_a = gr.va_embedding(va)
    n, d, h, w = emb_a.shape
    gates = {"b": 1 - gr.va_gated_b(va), "c": 1 - gr.va_gated_c(va)}
    branches = {"b": (vb, gr.ratio[0], gr.vb_embedding, gr.reweight_ab[0]),
                "c": (vc, gr.ratio[1], gr.vc_embedding, gr.reweight_ac[0])}
    agg = {k: torch.zeros(n, d, h, w, dtype=va.dtype) for k in branches}
    for i in range(h):
        for j in range(w):
            a = emb_a[:, :, i, j]
            for key, (v, r, embed, reweight) in branches.items():
                patch = v[:, :, i * r:(i + 1) * r, j * r:(j + 1) * r]
                emb = embed(patch.flatten(2).transpose(1, 2))          # n, r*r, d
                pair = torch.cat([a[:, None, :].expand_as(emb), emb], dim=-1)
                att = torch.softmax(torch.relu(reweight(pair)), dim=1)  # n, r*r, 1
                agg[key][:, :, i, j] = (att * emb).sum(1) * gates[key][:, :, i, j]
    fused = torch.sigmoid(torch.cat([agg["b"], agg["c"], emb_a], dim=1))
    return gr.reproject(fused)


def _small_gr(dtype=torch.float64):
    torch.manual_seed(0)
    gr = GraphReasoning(12, 8, 6, 8, 5, 8, (2, 4), drop_rate=0.3).to(dtype).eval()
    # non-square grid to catch row/column mix-ups
    va = torch.randn(2, 12, 2, 3, dtype=dtype)
    vb = torch.randn(2, 6, 4, 6, dtype=dtype)
    vc = torch.randn(2, 5, 8, 12, dtype=dtype)
    return gr, va, vb, vc


def test_vectorised_equals_looped_forward_and_backward():
    gr, va, vb, vc = _small_gr()
    inputs = [t.clone().requires_grad_() for t in (va, vb, vc)]
    ref_inputs = [t.clone().requires_grad_() for t in (va, vb, vc)]
    out = gr(*inputs)
    ref = looped_graph_reasoning(gr, *ref_inputs)
    assert out.shape == va.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)

    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, inputs + list(gr.parameters()), g)
    ref_grads = torch.autograd.grad(ref, ref_inputs + list(gr.parameters()), g)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_vectorised_equals_looped_at_recce_width():
    torch.manual_seed(1)
    gr = GraphReasoning(728, 256, 256, 256, 128, 256, (2, 4)).eval()
    va, vb, vc = torch.randn(2, 728, 4, 4), torch.randn(2, 256, 8, 8), torch.randn(2, 128, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(gr(va, vb, vc), looped_graph_reasoning(gr, va, vb, vc),
                                   rtol=1e-4, atol=1e-5)


def test_graph_reasoning_batch_one_and_dropout():
    gr, va, vb, vc = _small_gr(torch.float32)
    with torch.no_grad():
        single = gr(va[:1], vb[:1], vc[:1])
        torch.testing.assert_close(single, gr(va, vb, vc)[:1])
    gr.train()
    with torch.no_grad():
        assert not torch.equal(gr(va, vb, vc), gr(va, vb, vc))  # reproject dropout active


def test_graph_reasoning_rejects_unequal_widths():
    with pytest.raises(ValueError):
        GraphReasoning(8, 8, 4, 6, 4, 8)


def test_guided_attention_formula():
    torch.manual_seed(0)
    ga = GuidedAttention(depth=6, drop_rate=0.0).eval()
    x, recon, feat = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16), torch.randn(2, 6, 4, 4)
    with torch.no_grad():
        out = ga(x, recon, feat)
        res = F.interpolate((x - recon).abs(), size=(4, 4), mode="bilinear", align_corners=True)
        expected = ga.gated(res) * ga.h(feat) + feat
    torch.testing.assert_close(out, expected)
    # a perfect reconstruction gives a constant mask sigmoid(0) = 0.5
    with torch.no_grad():
        flat = ga(x, x, feat) - feat
    torch.testing.assert_close(flat, 0.5 * ga.h(feat).detach())


@pytest.fixture(scope="module")
def recce_small_out():
    torch.manual_seed(0)
    model = create_model("recce", drop_rate=0.0, train_noise_std=0.0)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    return model, x, model(x)


def test_recce_output_contract(recce_small_out):
    model, x, out = recce_small_out
    assert out["cls"].shape == (2, 2) and out["prob"].shape == (2,)
    torch.testing.assert_close(out["prob"], torch.softmax(out["cls"], 1)[:, 1])
    assert out["feat"].shape == (2, 2048)
    assert out["recon"].shape == x.shape
    (native,) = out["recon_views"]
    assert native.shape == (2, 3, 32, 32)  # 3 x2 upsamplings of the 1/16 embedding
    assert native.abs().max() <= 1  # tanh
    torch.testing.assert_close(out["recon"], F.interpolate(native, size=(64, 64),
                                                           mode="bilinear", align_corners=True))
    assert [tuple(f.shape) for f in out["metric_feats"]] == [(2, 728, 4, 4), (2, 256, 8, 8),
                                                              (2, 128, 16, 16)]


def test_recce_every_parameter_gets_gradient(recce_small_out):
    model, x, out = recce_small_out
    # classification alone reaches the decoder through reasoning and attention
    out["cls"].sum().backward(retain_graph=True)
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    decoder_grad = sum(p.grad.abs().sum() for n, p in model.named_parameters()
                       if n.startswith("decoder"))
    assert decoder_grad > 0


def test_recce_single_logit_and_dropout_flag():
    torch.manual_seed(0)
    model = Recce(num_classes=1, drop_rate=0.5, train_noise_std=0.0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.eval()
    with torch.no_grad():
        out = model(x)
        again = model(x)
    assert out["cls"].shape == (2, 1)
    torch.testing.assert_close(out["prob"], torch.sigmoid(out["cls"][:, 0]))
    torch.testing.assert_close(out["cls"], again["cls"])  # eval: dropout off
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x)["feat"], model(x)["feat"])  # train: dropout on


def test_recce_training_noise(recce_small_out):
    model, _, _ = recce_small_out
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.train()
    with torch.no_grad():
        a, b = model(x), model(x)
    torch.testing.assert_close(a["cls"], b["cls"])  # std 0 and no dropout: deterministic
    model.train_noise_std = 0.5
    try:
        torch.manual_seed(3)
        batch = torch.rand(200, 3, 4, 4) * 2 - 1
        noised = model._add_white_noise(batch)
        assert noised.min() >= -1 and noised.max() <= 1  # clipped to the input range
        changed = (noised != batch).flatten(1).any(1).float().mean()
        assert 0.3 < changed < 0.7  # about half of the samples get noise
        torch.manual_seed(0)  # this seed's random mask noises at least one sample
        with torch.no_grad():
            c = model(x)
        assert not torch.allclose(c["metric_feats"][0], a["metric_feats"][0])
        model.eval()
        with torch.no_grad():  # never in eval mode
            torch.testing.assert_close(model(x)["cls"], model(x)["cls"])
    finally:
        model.train_noise_std = 0.0
