"""Exposing the Deception learns end to end, through the command line as a user runs it:

make-synthetic (shared ``synth_task`` fixture) -> ``pycrl train fit`` with
pycrl/train/configs/exposing_synthetic.yaml (4 small LIBs at 64 px, the paper's losses, automatic
weighting and mixup; at most 480 steps and two minutes on 2 cores) -> a model folder that
``pycrl.weights.load`` reads -> ``pycrl train evaluate`` on it reports the validation
numbers recorded at training time.

Threshold: validation AUC >= 0.85 per frame on the 30 held-out identities (it reaches about
0.93-0.96 in 480 steps).
"""

import pytest

from pycrl.train.engine.logs import read_log
from train_cli import ROOT, assert_evaluate_reproduces, assert_learned, fit_synthetic

CONFIG = ROOT / "pycrl" / "train" / "configs" / "exposing_synthetic.yaml"


@pytest.mark.slow
def test_exposing_learns_exports_and_evaluates(synth_task, tmp_path):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run")
    val = assert_learned(model, training, cls="Exposing", side=64, min_auc=0.85)
    assert model.libs.packed and model.pycrl_meta["config"]["pretrained"] is False
    steps = read_log(tmp_path / "run" / "log.jsonl", "step")
    assert {"ce", "gil", "lil"} <= set(steps[-1])  # every term was trained and logged

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
