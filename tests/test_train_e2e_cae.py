"""CAE learns end to end, through the command line as a user runs it:

make-synthetic (the shared ``synth_task``) -> ``python -m train fit`` with
train/configs/cae_synthetic.yaml (64 px, a lite Xception encoder, at most 800 steps:
about 100 s on 2 quiet cores, stopped at two minutes on busy ones) -> a model folder that
``pycrl.weights.load`` reads -> ``python -m train evaluate`` on it reports the validation
numbers recorded at training time.

Threshold: frame-level validation AUC >= 0.85 on the 30 held-out identities (it reaches
about 0.92-0.94; 0.84-0.87 already after 50 steps).
"""

import json

import pytest

from pycrl import weights
from train_cli import ROOT, SYNTH_KEYS as KEYS, run_train as run, synth_overrides

CONFIG = ROOT / "train" / "configs" / "cae_synthetic.yaml"
# The time limit stops training after the step that crosses two minutes; the closing
# validation and checkpoint (about a second) follow it.
MAX_SECONDS = 120 + 10


@pytest.mark.slow
def test_cae_learns_exports_and_evaluates(synth_task, tmp_path):
    synth = synth_task
    run("fit", "--config", str(CONFIG), *synth_overrides(synth), f"output.dir={tmp_path / 'run'}",
        "train.progress=false")

    folder = tmp_path / "run" / "model"
    model = weights.load(folder)
    meta = model.pycrl_meta
    training = meta["provenance"]["training"]
    val = training["metrics"]["val"]
    assert training["seconds_this_session"] <= MAX_SECONDS, "training must fit in two minutes"
    assert val["auc"] >= 0.85, val
    assert val["n_videos"] == 60 and val["n_frames"] == 120  # 30 held-out identities, real + fake
    assert type(model).__name__ == "CAE" and meta["input_size"] == [3, 64, 64]
    assert training["config"]["loss"] == {"name": "cae", "recon_weight": 1.0, "recon_loss": "mse", "flood": 0.0}
    assert 0.0 < meta["decision_threshold"] < 1.0 and meta["threshold"]["mode"] == "eer"

    report = tmp_path / "val.json"
    run("evaluate", "--model", str(folder), "--data", str(synth / "dataset_json" / "Synthetic.json"),
        "--rgb-dir", str(synth), "--split", "val", "--frame-num", "0", "--label-keys", *KEYS,
        "--workers", "0", "--threads", "1", "--no-progress", "--out", str(report))
    got = json.loads(report.read_text())["metrics"]
    for key in ("auc", "video_auc", "eer", "ap", "acc", "n_frames", "n_videos"):
        assert got[key] == pytest.approx(val[key], abs=1e-6), key
    assert got["acc_at_threshold"] == pytest.approx(val["acc_at_threshold"], abs=1e-6)
