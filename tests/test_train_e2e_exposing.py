"""Exposing the Deception learns end to end, through the command line as a user runs it:

make-synthetic (shared ``synth_task`` fixture) -> ``python -m train fit`` with
train/configs/exposing_synthetic.yaml (4 small LIBs at 64 px, the paper's losses, automatic
weighting and mixup; at most 480 steps and two minutes on 2 cores) -> a model folder that
``pycrl.weights.load`` reads -> ``python -m train evaluate`` on it reports the validation
numbers recorded at training time.

Threshold: validation AUC >= 0.85 per frame on the 30 held-out identities (it reaches about
0.93-0.96 in 480 steps).
"""

import json

import pytest

from train_cli import ROOT, assert_evaluate_reproduces, fit_synthetic

CONFIG = ROOT / "train" / "configs" / "exposing_synthetic.yaml"


@pytest.mark.slow
def test_exposing_learns_exports_and_evaluates(synth_task, tmp_path):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run")
    meta = model.pycrl_meta
    val = training["metrics"]["val"]
    # the time limit stops training at 120 s; the final validation and export follow it
    assert training["seconds_this_session"] <= 130, "training must fit in two minutes"
    assert val["auc"] >= 0.85, val
    assert val["n_videos"] == 60 and val["n_frames"] == 120  # 30 held-out identities, real + fake
    assert training["metrics"]["test"]["n_frames"] == 40
    assert type(model).__name__ == "Exposing" and model.libs.packed and meta["input_size"] == [3, 64, 64]
    assert meta["config"]["pretrained"] is False
    assert 0.0 < meta["decision_threshold"] < 1.0 and meta["threshold"]["mode"] == "eer"
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [e for e in logged if e["event"] == "step"]
    assert {"ce", "gil", "lil"} <= set(steps[-1])  # every term was trained and logged

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
