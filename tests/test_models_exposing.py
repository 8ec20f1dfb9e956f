"""Exposing the Deception: outputs, the packed LIBs, every loss term by hand, export and serving."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pycrl.losses import create_loss
from pycrl.models import create_backbone, create_model
from pycrl.models.exposing import LocalBlocks, pack_backbones, unpackable_reason
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)
from test_models_onnx import lively_init

N, D = 4, 32  # LIBs, tiny-backbone feature width


def small(**cfg):
    torch.manual_seed(0)
    args = {"backbone": "tiny", "backbone_cfg": {"widths": (8, 16, 24, D)}, "bottleneck": (48, 24), "fusion_dim": 16}
    return create_model("exposing", **{**args, **cfg})


def lively(model):
    """Variance-preserving weights and non-trivial BatchNorm statistics, so outputs depend on the input."""
    lively_init(model, 1.4)
    return model.eval()


# -- the model


def test_training_outputs_carry_every_head_and_eval_only_the_global_one():
    m = small()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    out = m.train()(x)
    assert out["cls"].shape == (3, 2) and out["prob"].shape == (3,) and out["feat"].shape == (3, 16)
    assert out["cls_all"].shape == (3, 2) and out["cls_local"].shape == (3, N, 2)
    assert set(m.eval()(x)) == {"cls", "prob", "feat"}
    assert m.libs.packed and m.all_head.in_features == N * D
    assert [h.in_features for h in m.local_heads] == [(N - 1) * D] * N


def test_gradients_reach_every_parameter_in_training():
    m = small(num_libs=3).train()
    out = m(torch.rand(4, 3, 32, 32) * 2 - 1)
    (out["cls"].sum() + out["cls_all"].sum() + out["cls_local"].sum()).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_leave_one_out_head_i_never_sees_block_i():
    m = small().train()
    feats = torch.randn(2, N * D, requires_grad=True)
    m.leave_one_out(feats)[:, 1].sum().backward()
    blocks = feats.grad.view(2, N, D).abs().sum(dim=(0, 2))
    assert blocks[1] == 0 and (blocks[[0, 2, 3]] > 0).all()


def test_the_inference_module_is_the_global_path_alone():
    m = lively(small())
    inf = m.inference_module()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(inf(x)["prob"], m(x)["prob"])
    n_aux = sum(p.numel() for mod in (m.all_head, m.local_heads) for p in mod.parameters())
    assert sum(p.numel() for p in inf.parameters()) == sum(p.numel() for p in m.parameters()) - n_aux


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="num_libs"):
        create_model("exposing", backbone="tiny", num_libs=1)
    with pytest.raises(ValueError, match="cannot pack"):
        pack_backbones([create_backbone("efficientnet_lite0", num_classes=10)] * 2)


# -- packing n backbones into one grouped network


PACK_CASES = [
    ("tiny", {"widths": (8, 16, 24, 32)}, 32, True),
    ("xception-lite", {"widths": (8, 16, 16, 24, 32, 48, 64)}, 64, True),
    # stochastic depth draws one mask per sample, shared by packed copies: off for the train check
    ("efficientnet_lite0", {"drop_path_rate": 0.0}, 64, True),
]


@pytest.mark.parametrize("name,cfg,size,train", PACK_CASES, ids=[c[0] for c in PACK_CASES])
def test_packed_network_equals_separate_backbones(name, cfg, size, train):
    torch.manual_seed(0)
    nets = [create_backbone(name, **cfg) for _ in range(3)]
    for i, net in enumerate(nets):  # distinct weights and BN statistics per copy
        torch.manual_seed(10 + i)
        lively_init(net, 1.4)
    packed = pack_backbones(nets)
    x = torch.rand(4, 3, size, size) * 2 - 1
    for mode in (False, True):  # eval (running statistics), then train (batch statistics)
        for net in (*nets, packed):
            net.train(mode)
        with torch.no_grad():
            ref = torch.cat([net(x) for net in nets], dim=1)
            got = packed(x.repeat(1, 3, 1, 1))
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    bn_ref = [m.running_mean for net in nets for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    bn_got = [m.running_mean for m in packed.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    torch.testing.assert_close(bn_got[-bn_ref.numel():], bn_ref)  # the train pass updated each copy alike


def test_packed_gradients_equal_separate_ones():
    torch.manual_seed(0)
    nets = [create_backbone("tiny", widths=(8, 16)) for _ in range(2)]
    packed = pack_backbones(nets)
    x = torch.rand(4, 3, 16, 16)
    torch.cat([net(x) for net in nets], dim=1).square().sum().backward()
    packed(x.repeat(1, 2, 1, 1)).square().sum().backward()
    ref = torch.cat([net.stages[1][0].weight.grad for net in nets])
    torch.testing.assert_close(packed.stages[1][0].weight.grad, ref)


def test_unpackable_backbones_run_in_a_loop():
    lite_with_fc = create_backbone("efficientnet_lite0", num_classes=10)
    assert "Linear" in unpackable_reason(lite_with_fc)
    libs = LocalBlocks([create_backbone("tiny", widths=(8, 16)) for _ in range(2)], pack=False)
    assert not libs.packed and libs(torch.rand(2, 3, 16, 16)).shape == (2, 32)


def test_pack_flag_does_not_change_the_model():
    looped = small(pack=False)
    packed = small(pack=True)  # same seed: the same backbones before packing
    assert packed.libs.packed and not looped.libs.packed
    packed.eval(), looped.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(packed(x)["prob"], looped(x)["prob"])


def test_channels_last_is_a_speed_choice_only(tmp_path):
    from pycrl import weights

    plain, nhwc = lively(small()), lively(small(channels_last=True))
    assert nhwc.libs.net.stages[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x)["prob"], plain(x)["prob"])
    weights.save(nhwc, tmp_path / "m", {"input_size": [3, 32, 32]})  # stored as plain tensors
    with torch.no_grad():
        torch.testing.assert_close(weights.load(tmp_path / "m")(x)["prob"], plain(x)["prob"])


# -- the loss, term by term against hand computations


def _softmax(row, t=1.0):
    e = [math.exp(v / t) for v in row]
    return [v / sum(e) for v in e]


def _ce(row, y):
    return -math.log(_softmax(row)[y])


def _kl(p_row, q_row, t):
    """KL(softmax(p/T) || softmax(q/T)) summed over classes (for one sample)."""
    p, q = _softmax(p_row, t), _softmax(q_row, t)
    return sum(a * math.log(a / b) for a, b in zip(p, q))


CLS = [[1.0, -0.5], [0.2, 0.3]]
ALL = [[0.5, 0.0], [-1.0, 1.0]]
LOCAL = [[[0.1, 0.4], [2.0, -1.0]], [[-0.3, 0.0], [0.0, 0.7]]]  # (B=2, n=2, C=2)
Y = [0, 1]


def outputs():
    return {"cls": torch.tensor(CLS, requires_grad=True), "cls_all": torch.tensor(ALL, requires_grad=True),
            "cls_local": torch.tensor(LOCAL, requires_grad=True)}


def _mean(vals):
    return sum(vals) / len(vals)


def hand_terms(t=1.5):
    ce = _mean([_ce(CLS[b], Y[b]) for b in range(2)]) + _mean([_ce(ALL[b], Y[b]) for b in range(2)])
    ce += sum(_mean([_ce(LOCAL[b][i], Y[b]) for b in range(2)]) for i in range(2))
    # KLDivLoss's default reduction: the mean over all B*C elements = per-sample sum / (B*C)
    gil = sum(_kl(CLS[b], ALL[b], t) for b in range(2)) / 4
    lil = math.exp(-sum(_kl(LOCAL[b][i], ALL[b], t) for b in range(2) for i in range(2)) / 4)
    return ce, gil, lil


def loss_of(**cfg):
    return create_loss("exposing", **{"mixup": False, **cfg})


def num(t: torch.Tensor) -> float:
    return float(t.detach())


def test_ce_gil_and_lil_match_hand_computation():
    terms = loss_of(balance="hyper")(outputs(), torch.tensor(Y))
    ce, gil, lil = hand_terms()
    assert num(terms["ce"]) == pytest.approx(ce, rel=1e-5)
    assert num(terms["gil"]) == pytest.approx(gil, rel=1e-5)
    assert num(terms["lil"]) == pytest.approx(lil, rel=1e-5)
    assert num(terms["overall"]) == pytest.approx(ce + 2 * gil + 10 * lil, rel=1e-5)  # hyper [1, 2, 10]


def test_temperature_and_switches():
    terms = loss_of(balance="hyper", temperature=3.0, scales=(1.0, 0.0, 5.0))(outputs(), torch.tensor(Y))
    ce, gil, lil = hand_terms(3.0)
    assert num(terms["gil"]) == pytest.approx(gil, rel=1e-5)
    assert num(terms["overall"]) == pytest.approx(ce + 5 * lil, rel=1e-5)
    ce_only = loss_of(global_loss=False, local_loss=False, balance="hyper")(outputs(), torch.tensor(Y))
    assert set(ce_only) == {"overall", "ce"}
    assert num(ce_only["overall"]) == pytest.approx(sum(_ce(CLS[b], Y[b]) for b in range(2)) / 2, rel=1e-5)
    # scales are matched by name: without the GIL, the LIL still gets its own weight
    no_gil = loss_of(global_loss=False, balance="hyper")(outputs(), torch.tensor(Y))
    assert num(no_gil["overall"]) == pytest.approx(num(no_gil["ce"]) + 10 * hand_terms()[2], rel=1e-5)


def test_automatic_weighting_matches_hand_computation():
    loss = loss_of(balance="auto")
    ce, gil, lil = hand_terms()
    at_one = num(loss(outputs(), torch.tensor(Y))["overall"])
    assert at_one == pytest.approx(0.5 * (ce + gil + lil) + 3 * math.log(2), rel=1e-5)
    sigma = [0.5, 2.0, 1.5]
    loss.load_state_dict({"sigma": torch.tensor(sigma)})
    want = sum(0.5 / s ** 2 * v + math.log(1 + s ** 2) for s, v in zip(sigma, (ce, gil, lil)))
    terms = loss(outputs(), torch.tensor(Y))
    assert num(terms["overall"]) == pytest.approx(want, rel=1e-5)
    terms["overall"].backward()
    assert loss.parameters()[0].grad is not None and loss.parameters()[0].grad.abs().min() > 0


def test_loss_owned_state_round_trips():
    loss = loss_of(balance="auto", local_loss=False)
    assert loss.parameters()[0].shape == (2,)  # one sigma per active term
    with torch.no_grad():
        loss.parameters()[0].copy_(torch.tensor([0.7, 1.3]))
    other = loss_of(balance="auto", local_loss=False)
    other.load_state_dict(loss.state_dict())
    torch.testing.assert_close(other.parameters()[0], torch.tensor([0.7, 1.3]))
    assert loss_of(balance="hyper").parameters() == [] and loss_of(balance="hyper").state_dict() == {}
    with pytest.raises(ValueError, match="keys"):
        loss_of(balance="hyper").load_state_dict({"sigma": torch.ones(3)})


def test_targets_are_detached():
    for term, learner in (("gil", "cls"), ("lil", "cls_local")):  # z distils from F; F is the LIL's target
        out = outputs()
        loss_of()(out, torch.tensor(Y))[term].backward()
        assert out[learner].grad.abs().sum() > 0 and out["cls_all"].grad is None, term


def test_mixup_mixes_inputs_and_each_ce_term():
    loss = create_loss("exposing", mixup=True, balance="hyper")
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    batch = {"image": images, "label": torch.tensor([0, 1, 1, 0]), "video_id": list("abcd")}
    torch.manual_seed(3)
    mixed = loss.prepare_batch(batch)
    torch.manual_seed(3)  # torch's global RNG alone decides: a reseeded run mixes alike
    again = loss.prepare_batch(batch)
    lam, partner = mixed["mix_lambda"], mixed["label_b"]
    assert again["mix_lambda"] == lam and torch.equal(again["label_b"], partner) and 0 < lam < 1
    perm = [int(v) for v in (mixed["image"][:, 0, 0, 0] - lam * torch.arange(4.0)) / (1 - lam) + 0.5]
    assert sorted(perm) == [0, 1, 2, 3] and partner.tolist() == [batch["label"][p].item() for p in perm]
    assert mixed["video_id"] == batch["video_id"]

    out = outputs()
    labels = torch.tensor(Y)
    mix_batch = {"label": labels, "label_b": 1 - labels, "mix_lambda": 0.3}
    got = loss(out, mix_batch)
    plain, flipped = loss_of(balance="hyper")(outputs(), labels), loss_of(balance="hyper")(outputs(), 1 - labels)
    for key in ("ce", "gil", "lil", "overall"):  # each term is lam L(y_a) + (1 - lam) L(y_b)
        assert num(got[key]) == pytest.approx(0.3 * num(plain[key]) + 0.7 * num(flipped[key]), rel=1e-5)
    assert loss_of().prepare_batch(batch) is batch  # switched off: untouched


def test_the_loss_needs_training_outputs():
    m = small().eval()
    with pytest.raises(KeyError, match="training-mode"):
        loss_of()(m(torch.rand(2, 3, 32, 32)), torch.tensor([0, 1]))


# -- export and serving


def test_onnx_export_serves_the_global_head(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    import pycrl
    from pycrl import weights
    from pycrl.export import export_onnx

    m = lively(small())
    folder = tmp_path / "exposing"
    weights.save(m, folder, {"input_size": [3, 48, 48]})
    assert weights.load(folder).pycrl_config["pretrained"] is False
    export_onnx(folder)

    proto = onnx.load(str(folder / "model.onnx"))
    assert [o.name for o in proto.graph.output] == ["prob", "logits", "feat"]
    shapes = [tuple(t.dims) for t in proto.graph.initializer]
    assert {(2, N * D), (2, (N - 1) * D), (N * D, 2), ((N - 1) * D, 2)}.isdisjoint(shapes)  # no auxiliary head
    assert sum(int(np.prod(s)) for s in shapes) <= sum(t.numel() for t in m.inference_module().state_dict().values())

    x = torch.rand(5, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        ref = m(x)
    assert np.ptp(ref["prob"].numpy()) > 1e-3  # the comparison is not trivially true
    with pycrl.Detector(folder, backend="onnxruntime", batch_size=2) as det:
        got = det.infer(x.numpy())
        prob = det.score_batch(x.numpy())
    np.testing.assert_allclose(prob, ref["prob"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got["feat"], ref["feat"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got["logits"], ref["cls"].numpy(), atol=1e-4, rtol=1e-4)


# -- training: mixup and the uncertainty weights resume exactly


@pytest.fixture
def tiny_run(tmp_path):
    """A 4-LIB Exposing model on 32 px synthetic faces, mixup and automatic weighting on."""
    from pycrl import _C
    from pycrl.train.config import load_config
    from pycrl.train.data import SyntheticSpec, write_synthetic_dataset

    synth = tmp_path / "synth"
    write_synthetic_dataset(SyntheticSpec(out=str(synth), identities=8, frames_per_id=2, val_identities=2,
                                          test_identities=1, seed=5))
    src = {"type": "deepfakebench", "json": str(synth / "dataset_json" / "Synthetic.json"), "rgb_dir": str(synth),
           "frame_num": None}
    config = Path(__file__).resolve().parents[1] / "pycrl" / "train" / "configs" / "exposing_synthetic.yaml"

    def cfg(out, *overrides):
        c = load_config(config, ["model.backbone_cfg={widths: [4, 8, 8, 8, 8, 8, 8]}", "model.bottleneck=[16]",
                                 "data.resolution=32", "data.batch_size=4", "data.eval_batch_size=8",
                                 "scheduler.t_max=10",  # the same schedule whatever max_steps says
                                 "train.log_every=1", "train.eval_every=null", "train.progress=false",
                                 f"output.dir={tmp_path / out}", *overrides])
        c["data"]["train"] = {**src, "split": "train", "self_blend": True}
        c["data"]["val"] = {**src, "split": "val"}
        return c

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield cfg
    torch.set_num_threads(threads)  # the trainer sets these process-wide
    torch.use_deterministic_algorithms(det)
    _C.set_num_threads(0)


def test_resume_repeats_mixup_and_the_loss_weights_exactly(tiny_run, tmp_path):
    from pycrl.train.engine import checkpoint as ckpt
    from pycrl.train.engine.logs import read_log
    from pycrl.train.engine.loop import Trainer

    Trainer(tiny_run("a", "train.max_steps=7")).fit()
    Trainer(tiny_run("a", "train.max_steps=10", "output.resume=auto")).fit()
    Trainer(tiny_run("b", "train.max_steps=10")).fit()
    resumed, straight = ({r["step"]: r["overall"] for r in read_log(tmp_path / run / "log.jsonl", "step")}
                         for run in ("a", "b"))
    assert resumed == straight and len(set(straight.values())) > 5
    a, b = (ckpt.read(tmp_path / run / "checkpoints" / ckpt.LAST) for run in ("a", "b"))
    assert all(torch.equal(a["model"][k], v) for k, v in b["model"].items())
    assert torch.equal(a["loss"]["sigma"], b["loss"]["sigma"])
    assert not torch.equal(b["loss"]["sigma"], torch.ones(3))  # the weights were trained