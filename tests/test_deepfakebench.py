"""DeepfakeBench cross-check: regenerate the synthetic weights of each fixture
detector, write them as DeepfakeBench writes checkpoints, import them, and
match DeepfakeBench's own outputs. Plus the importer's strictness and safety.

Fixtures: $PYCRL_SHARED/fixtures/deepfakebench or <repo>/../shared/...
"""

import hashlib
import json
import math
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from pycrl.models import create_model
from pycrl.models.efficientnet import SameConv2d
from pycrl.weights import CheckpointError, import_deepfakebench
from pycrl.weights.deepfakebench import LAYOUTS
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)

DETECTORS = ("xception", "efficientnetb4", "recce")
REPO = Path(__file__).resolve().parents[1]


def fixture_dir() -> Path:
    shared = os.environ.get("PYCRL_SHARED")
    base = Path(shared) if shared else REPO.parent / "shared"
    return base / "fixtures" / "deepfakebench"


def need_fixture(name: str) -> Path:
    path = fixture_dir() / f"{name}_state_dict.json"
    if not path.is_file():
        pytest.skip(f"DeepfakeBench fixture {path} absent (set PYCRL_SHARED to the shared/ dir)")
    return path


def gen_weight(key: str, shape, gain: float) -> np.ndarray:
    """The README's "crc32-normal-v1" rule."""
    rng = np.random.default_rng(zlib.crc32(key.encode("utf-8")))
    shape = tuple(shape)
    if key.endswith(".num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if key.endswith(".running_var"):
        a = 1.0 + 0.1 * rng.random(shape)
    elif key.endswith(".running_mean"):
        a = 0.1 * rng.standard_normal(shape)
    elif key.endswith(".weight") and len(shape) >= 2:
        a = rng.standard_normal(shape) * (gain * math.sqrt(1.0 / int(np.prod(shape[1:]))))
    elif key.endswith(".weight"):
        a = 1.0 + 0.1 * rng.standard_normal(shape)
    elif key.endswith(".bias"):
        a = 0.1 * rng.standard_normal(shape)
    else:
        raise ValueError(f"no rule for {key}")
    return a.astype(np.float32)


_CACHE = {}


def manifest_and_state(name: str):
    """(manifest, DeepfakeBench state dict) for a fixture detector, generated once."""
    if name not in _CACHE:
        manifest = json.loads(need_fixture(name).read_text())
        gain = manifest["weight_rule"]["weight_gain"]
        arrays = [(e["key"], gen_weight(e["key"], e["shape"], gain)) for e in manifest["keys"]]
        digest = hashlib.sha256()
        for _, a in arrays:
            digest.update(a.tobytes())
        assert digest.hexdigest() == manifest["weight_rule"]["sha256"], "weight rule drifted"
        _CACHE[name] = (manifest, {k: torch.from_numpy(a) for k, a in arrays})
    return _CACHE[name]


def reference(name: str):
    need_fixture(name)
    return dict(np.load(fixture_dir() / f"{name}_reference_seed1234.npz"))


# ------------------------------------------------------------- output fidelity

@pytest.mark.parametrize("name", DETECTORS)
def test_fixture_outputs_match(name, tmp_path):
    manifest, state = manifest_and_state(name)
    ref = reference(name)
    ckpt = tmp_path / "ckpt_best.pth"
    torch.save(state, ckpt)  # Trainer.save_ckpt format (non-DDP)
    model = import_deepfakebench(ckpt, detector=name)
    assert not model.training

    with torch.no_grad():
        out = model(torch.from_numpy(ref["image"]))
    cls_atol = 1e-4 if name == "efficientnetb4" else 1e-5  # README tolerances
    np.testing.assert_allclose(out["prob"].numpy(), ref["prob"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out["prob"].numpy(), ref["prob"], rtol=0, atol=cls_atol)
    np.testing.assert_allclose(out["cls"].numpy(), ref["cls"], rtol=0, atol=cls_atol)
    np.testing.assert_allclose(out["feat"].numpy(), ref["feat"], rtol=1e-4, atol=1e-5)
    if name == "recce":
        np.testing.assert_allclose(out["recon"].numpy(), ref["recons"], rtol=1e-4, atol=1e-5)
        corr = []
        for f in out["metric_feats"]:  # RECCE's norm_n_corr
            e = torch.nn.functional.normalize(f.mean((2, 3)), dim=1)
            corr.append((e @ e.T + 1) / 2)
        np.testing.assert_allclose(torch.stack(corr).numpy(), ref["contra_corr"],
                                   rtol=1e-4, atol=1e-5)
    # outputs depend on the input (the fixture is not degenerate)
    assert np.ptp(ref["prob"]) > 1e-3

    # a --ddp checkpoint (keys under "module.") gives the identical model
    ckpt.unlink()
    ddp = tmp_path / "ckpt_ddp.pth"
    torch.save({"module." + k: v for k, v in state.items()}, ddp)
    _assert_same_state(import_deepfakebench(ddp, detector=name), model)


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file
    _, state = manifest_and_state("xception")
    path = tmp_path / "ckpt.safetensors"
    save_file(state, str(path))
    _assert_same_state(import_deepfakebench(path, detector="xception"),
                       import_deepfakebench(state, detector="xception"))


def test_xception_trained_with_dropout_head():
    """``dropout`` in DeepfakeBench's xception config saves the head as last_linear.1.*."""
    _, state = manifest_and_state("xception")
    renamed = {k.replace("backbone.last_linear.", "backbone.last_linear.1."): v for k, v in state.items()}
    _assert_same_state(import_deepfakebench(renamed, detector="xception"),
                       import_deepfakebench(state, detector="xception"))
    both = {**state, "backbone.last_linear.1.weight": state["backbone.last_linear.weight"]}
    with pytest.raises(CheckpointError, match="last_linear.weight"):
        import_deepfakebench(both, detector="xception")


def test_in_memory_import_does_not_alias_caller_tensors():
    _, state = manifest_and_state("xception")
    model = import_deepfakebench(state, detector="xception")
    model.head.weight.data.zero_()
    assert state["backbone.last_linear.weight"].abs().sum() > 0


# --------------------------------------------------------- structure vs manifest

@pytest.mark.parametrize("name", DETECTORS)
def test_module_hyperparameters_match_manifest(name):
    """Every conv's stride/padding/groups, EfficientNet's static 'same' pads
    and every BatchNorm eps equal what DeepfakeBench built."""
    manifest, _ = manifest_and_state(name)
    layout = LAYOUTS[name]
    with torch.device("meta"):
        model = create_model(layout.model)
    modules = dict(model.named_modules())
    checked = 0
    for entry in manifest["keys"]:
        target = layout.to_pycrl(entry["key"])
        if target is None:
            continue
        mod = modules[target.rsplit(".", 1)[0]]
        conv = entry.get("conv")
        if conv and target.endswith(".weight"):
            assert list(mod.stride) == conv["stride"] and mod.groups == conv["groups"], target
            assert list(mod.padding) == conv["padding"] and list(mod.dilation) == conv["dilation"]
            lrtb = conv.get("static_same_padding_lrtb")
            if isinstance(mod, SameConv2d):
                assert list(mod.static_pad) == (lrtb or [0, 0, 0, 0]), target
            checked += 1
        if "eps" in entry:
            assert mod.eps == pytest.approx(entry["eps"]), target
    assert checked > 50


# ---------------------------------------------------------------- strictness

def _error(state, detector="xception") -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        import_deepfakebench(state, detector=detector)
    return info.value


def test_missing_key_is_named():
    _, state = manifest_and_state("xception")
    broken = dict(state)
    del broken["backbone.block7.rep.4.pointwise.weight"]
    err = _error(broken)
    assert err.missing == ["backbone.block7.rep.4.pointwise.weight"]
    assert "backbone.block7.rep.4.pointwise.weight" in str(err) and "1 missing" in str(err)


def test_unused_keys_are_still_required():
    _, state = manifest_and_state("xception")
    broken = {k: v for k, v in state.items() if not k.startswith("backbone.adjust_channel.")}
    assert len(_error(broken).missing) == 7
    _, recce = manifest_and_state("recce")
    broken = {k: v for k, v in recce.items() if k != "model.encoder.fc.bias"}
    assert _error(broken, "recce").missing == ["model.encoder.fc.bias"]
    broken = {k: v for k, v in recce.items() if not k.startswith("backbone.block3.")}
    assert len(_error(broken, "recce").missing) == 20


def test_unexpected_key_and_shape_mismatch_are_named():
    _, state = manifest_and_state("efficientnetb4")
    broken = dict(state)
    broken["backbone.efficientnet._fc.weight"] = torch.zeros(2, 1792)
    broken["backbone.last_layer.weight"] = torch.zeros(3, 1792)
    err = _error(broken, "efficientnetb4")
    assert err.unexpected == ["backbone.efficientnet._fc.weight"]
    assert err.mismatched == [("backbone.last_layer.weight", (3, 1792), (2, 1792))]
    msg = str(err)
    assert "_fc.weight" in msg and "checkpoint [3, 1792] vs expected [2, 1792]" in msg


def test_num_classes_config_reaches_the_shape_check():
    _, state = manifest_and_state("xception")
    with pytest.raises(CheckpointError, match="last_linear") as info:
        import_deepfakebench(state, detector="xception", num_classes=1)
    assert {k for k, _, _ in info.value.mismatched} == {"backbone.last_linear.weight",
                                                         "backbone.last_linear.bias"}


def test_wrong_detector_is_a_clear_error():
    _, state = manifest_and_state("xception")
    err = _error(state, "recce")
    assert len(err.missing) > 300 and err.unexpected == []
    with pytest.raises(ValueError, match="supported"):
        import_deepfakebench(state, detector="ucf")


# ---------------------------------------------------------------- safety

class _Payload:
    """Pickles to a call of Path.touch: loading it must never run that call."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_hostile_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pth"
    torch.save({"backbone.conv1.weight": torch.zeros(1), "x": _Payload(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        import_deepfakebench(ckpt, detector="xception")
    raw = tmp_path / "evil.pkl"  # legacy (non-zip) pickle file
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(CheckpointError):
        import_deepfakebench(raw, detector="xception")
    assert not marker.exists()


def test_garbage_and_non_tensor_entries(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        import_deepfakebench(junk)
    odd = tmp_path / "odd.pth"
    torch.save({"a": torch.zeros(1), "epoch": 3}, odd)
    with pytest.raises(CheckpointError, match="not tensors"):
        import_deepfakebench(odd)
    with pytest.raises(FileNotFoundError):
        import_deepfakebench(tmp_path / "absent.pth")
