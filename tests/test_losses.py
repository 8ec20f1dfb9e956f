"""pycrl.losses against values worked out by hand on tiny tensors.

Geometry used throughout: real embeddings r0 = (1, 0), r1 = (0, 1) and a fake f = (-1, 0),
so with S = (cos + 1) / 2: S(r0, r1) = 0.5, S(r0, f) = 0, S(r1, f) = 0.5, hence
sim = 0.5 (real-real), diff = 0.25 (real-fake) and RECCE's margin term 1 - 0.5 + 0.25 = 0.75.
"""

import math

import pytest
import torch
from torch import nn

from pycrl.losses import CENTRE_BUFFER, create_loss, list_losses

LABELS = torch.tensor([0, 0, 1])  # r0, r1, f


def embeddings(scale=(1.0, 3.0, 0.5)):
    """(3, 2) vectors in the directions r0, r1, f with different norms (normalisation matters)."""
    base = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    return base * torch.tensor(scale)[:, None]


def as_map(v, h=2, w=3):
    """A (B, D, h, w) map whose global average pool is ``v``, with spatial variation."""
    wiggle = torch.linspace(-1, 1, h * w).reshape(1, 1, h, w)
    return (v[:, :, None, None] + wiggle * torch.tensor([1.0, -1.0])[None, :, None, None]).requires_grad_(True)


def output(cls=None, n_views=1, batch=3):
    """A detector-style output: balanced logits (CE = ln 2), views whose error on reals is known."""
    cls = torch.zeros(batch, 2) if cls is None else cls
    # Input x = 0. View 1 (2x2) = 0.5 everywhere -> L1 0.5; view 2 (4x4) = -0.25 -> L1 0.25.
    views = [torch.full((batch, 3, 2, 2), 0.5), torch.full((batch, 3, 4, 4), -0.25)][:n_views]
    views = [v.clone().requires_grad_(True) for v in views]
    feats = [as_map(embeddings()) for _ in range(3)]
    return {"cls": cls.requires_grad_(True), "feat": embeddings(),
            "recon_views": views, "metric_feats": feats}


def batch(labels=LABELS, size=8):
    return {"image": torch.zeros(len(labels), 3, size, size), "label": labels}


class Holder(nn.Module):
    """Stands in for a detector's buffers: the centroid mode keeps its centre on the model."""

    def __init__(self, centre=None):
        super().__init__()
        if centre is not None:
            self.register_buffer(CENTRE_BUFFER, torch.as_tensor(centre, dtype=torch.float32))


def test_registry_lists_and_rejects():
    assert {"ce", "recce", "crl"} <= set(list_losses())
    with pytest.raises(KeyError, match="unknown loss"):
        create_loss("nope")
    with pytest.raises(ValueError, match="recipe"):
        create_loss("recce", recipe="nope")
    with pytest.raises(ValueError, match="compact_mode"):
        create_loss("crl", compact_mode="nope")
    with pytest.raises(TypeError):
        create_loss("recce", lamda=1)


def test_ce_two_logits_and_one_logit():
    out = create_loss("ce")(output(), LABELS)
    assert out["overall"].item() == pytest.approx(math.log(2), abs=1e-6)
    one = {"cls": torch.tensor([[0.0], [math.log(3)]])}  # BCE: -ln(1/2), -ln(3/4)
    got = create_loss("ce")(one, torch.tensor([0, 1]))["overall"].item()
    assert got == pytest.approx((math.log(2) + math.log(4 / 3)) / 2, abs=1e-6)


def test_flooding_reflects_loss_below_level():
    cls = torch.tensor([[0.0, 5.0], [5.0, 0.0]], requires_grad=True)
    labels = torch.tensor([1, 0])
    plain = math.log1p(math.exp(-5))  # well below b = 0.04
    got = create_loss("ce", flood=0.04)({"cls": cls}, labels)["overall"]
    assert got.item() == pytest.approx(0.08 - plain, abs=1e-6)
    got.backward()
    flooded_grad = cls.grad.clone()
    cls.grad = None
    create_loss("ce")({"cls": cls}, labels)["overall"].backward()
    torch.testing.assert_close(flooded_grad, -cls.grad)  # gradient ascent below the flood level


def test_recce_paper_matches_hand_value():
    terms = create_loss("recce", recipe="paper")(output(), batch())
    # flood does nothing above b: CE = ln 2 > 0.04
    assert terms["cls"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert terms["recon"].item() == pytest.approx(0.5, abs=1e-6)
    assert terms["metric"].item() == pytest.approx(3 * 0.75, abs=1e-6)
    assert terms["overall"].item() == pytest.approx(math.log(2) + 0.1 * 0.5 + 0.1 * 2.25, abs=1e-6)


def test_recce_margin_clamps_at_zero_and_uses_margin():
    # a margin of 0.5 gives 0.5 - 0.5 + 0.25 = 0.25 per layer; 0.2 would go negative -> 0
    assert create_loss("recce", margin=0.5)(output(), batch())["metric"].item() == pytest.approx(0.75, abs=1e-6)
    out = output()
    terms = create_loss("recce", margin=0.2)(out, batch())
    assert terms["metric"].item() == 0.0
    terms["metric"].backward()
    assert all(f.grad is None or not f.grad.any() for f in out["metric_feats"])


def test_recce_single_logit_bce():
    cls = torch.tensor([[0.0], [0.0], [0.0]])
    terms = create_loss("recce")(output(cls=cls), batch())
    assert terms["cls"].item() == pytest.approx(math.log(2), abs=1e-6)


def test_recce_deepfakebench_is_cross_entropy_only():
    out = output()
    del out["recon_views"], out["metric_feats"]  # never read
    terms = create_loss("recce", recipe="deepfakebench")(out, LABELS)  # labels alone suffice
    assert set(terms) == {"overall", "cls"}
    assert terms["overall"].item() == pytest.approx(math.log(2), abs=1e-6)


def test_recon_needs_images():
    with pytest.raises(ValueError, match="needs the input images"):
        create_loss("recce")(output(), LABELS)


def test_crl_multiview_weights_and_pairwise():
    loss = create_loss("crl", view_weights=[1.0, 2.0], compact_mode="pairwise", compact_weight=0.5)
    terms = loss(output(n_views=2), batch())
    assert terms["recon"].item() == pytest.approx(0.5 + 2 * 0.25, abs=1e-6)
    assert terms["compact"].item() == pytest.approx(3 * (1 - 0.5), abs=1e-6)
    assert terms["overall"].item() == pytest.approx(math.log(2) + 0.1 * 1.0 + 0.5 * 1.5, abs=1e-6)
    with pytest.raises(ValueError, match="weight"):
        create_loss("crl", view_weights=[1.0])(output(n_views=2), batch())


def test_crl_recce_margin_mode_equals_recce_metric():
    terms = create_loss("crl", compact_mode="recce_margin", layer_weights=[1, 0, 2])(output(), batch())
    assert terms["compact"].item() == pytest.approx(3 * 0.75, abs=1e-6)


def test_crl_centroid_value_and_ema_update():
    model = Holder(centre=[1.0, 1.0]).train()
    loss = create_loss("crl", compact_mode="centroid", centre_momentum=0.5)
    loss.attach(model)
    terms = loss(output(), batch())
    # ||r - c_hat||^2 = 2 - 2 cos(45 deg) = 2 - sqrt(2) for both reals
    assert terms["compact"].item() == pytest.approx(2 - math.sqrt(2), abs=1e-6)
    # c <- 0.5 c + 0.5 * mean(r0, r1) = 0.5 (1, 1) + 0.5 (0.5, 0.5); the fake is left out
    torch.testing.assert_close(model.real_centre, torch.tensor([0.75, 0.75]))
    assert not model.real_centre.requires_grad


def test_crl_centroid_backward_after_the_centre_update():
    model = Holder(centre=[1.0, 1.0]).train()
    loss = create_loss("crl", compact_mode="centroid", centre_momentum=0.5)
    loss.attach(model)
    feat = embeddings().requires_grad_(True)
    out = {**output(), "feat": feat}
    loss(out, batch())["compact"].backward()  # the in-place EMA update ran before this
    # d/df of ||f/|f| - c_hat||^2 for r1 = (0, 3): only the tangential part, scaled by 1/|f| and 1/2 (mean)
    c = 1 / math.sqrt(2)
    torch.testing.assert_close(feat.grad[1], torch.tensor([-c / 3, 0.0]), atol=1e-6, rtol=1e-5)
    assert not feat.grad[2].any()  # the fake is not pulled


def test_crl_centroid_no_update_in_eval_or_no_grad():
    model = Holder(centre=[1.0, 0.0])
    loss = create_loss("crl", compact_mode="centroid", centre_momentum=0.5)
    loss.attach(model)
    model.eval()
    loss(output(), batch())
    model.train()
    with torch.no_grad():
        loss(output(), batch())
    torch.testing.assert_close(model.real_centre, torch.tensor([1.0, 0.0]))


def test_crl_centroid_registers_and_initialises_centre():
    model = Holder().train()
    loss = create_loss("crl", compact_mode="centroid")
    with pytest.raises(RuntimeError, match="attach"):
        loss(output(), batch())
    loss.attach(model)
    terms = loss(output(), batch())
    assert terms["compact"].item() == 0.0  # no centre yet: this batch only sets it
    torch.testing.assert_close(model.real_centre, torch.tensor([0.5, 0.5]))
    assert CENTRE_BUFFER in model.state_dict()  # saved with the model
    # the next batch is measured against it: both reals at 45 degrees
    assert loss(output(), batch())["compact"].item() == pytest.approx(2 - math.sqrt(2), abs=1e-6)


def test_crl_centroid_on_a_metric_layer():
    model = Holder().train()
    loss = create_loss("crl", compact_mode="centroid", centre_feature="metric_feats.1")
    loss.attach(model)
    loss(output(), batch())
    assert model.real_centre.shape == (2,)
    wrong = create_loss("crl", centre_feature="nope")
    wrong.attach(model)
    with pytest.raises(KeyError, match="nope"):
        wrong(output(), batch())


@pytest.mark.parametrize("name,cfg", [
    ("recce", {}),
    ("crl", {"compact_mode": "pairwise"}),
    ("crl", {"compact_mode": "centroid"}),
    ("crl", {"compact_mode": "recce_margin"}),
])
def test_no_real_sample_gives_zero_terms_and_zero_gradients(name, cfg):
    fakes = torch.tensor([1, 1, 1])
    model = Holder(centre=[1.0, 1.0]).train()
    out = output(n_views=2)
    loss = create_loss(name, **cfg, **({"view_weights": [1, 1]} if name == "crl" else {}))
    loss.attach(model)
    terms = loss(out, batch(fakes))
    extra = [k for k in terms if k not in ("overall", "cls")]
    assert extra and all(terms[k].item() == 0.0 for k in extra)
    terms["overall"].backward()
    assert out["cls"].grad.abs().sum() > 0  # only the classifier learns from this batch
    for t in out["recon_views"] + out["metric_feats"]:
        assert t.grad is None or torch.count_nonzero(t.grad) == 0
    torch.testing.assert_close(model.real_centre, torch.tensor([1.0, 1.0]))  # no reals: no update


def test_one_real_pairwise_is_zero_but_margin_is_not():
    labels = torch.tensor([0, 1, 1])
    assert create_loss("crl", compact_mode="pairwise")(output(), batch(labels))["compact"].item() == 0.0
    # RECCE with one real: sim = 0, diff = mean(S(r0, r1'), S(r0, f)) where r1' is now a fake:
    # S(r0, r1) = 0.5, S(r0, f) = 0 -> diff 0.25, term 1 - 0 + 0.25 per layer
    assert create_loss("recce")(output(), batch(labels))["metric"].item() == pytest.approx(3 * 1.25, abs=1e-6)


def test_gradients_reach_views_and_features():
    out = output(n_views=2)
    create_loss("crl", compact_mode="pairwise", view_weights=[1, 1])(out, batch())["overall"].backward()
    for t in out["recon_views"] + out["metric_feats"]:
        assert t.grad is not None and t.grad.abs().sum() > 0
    # a fake's view gets no reconstruction gradient
    assert not out["recon_views"][0].grad[2].any()
