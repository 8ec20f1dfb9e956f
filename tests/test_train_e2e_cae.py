"""CAE learns end to end, through the command line as a user runs it:

make-synthetic (the shared ``synth_task``) -> ``pycrl train fit`` with
pycrl/train/configs/cae_synthetic.yaml (64 px, a lite Xception encoder, at most 800 steps:
about 100 s on 2 quiet cores, stopped at two minutes on busy ones) -> a model folder that
``pycrl.weights.load`` reads -> ``pycrl train evaluate`` on it reports the validation
numbers recorded at training time.

Threshold: frame-level validation AUC >= 0.85 on the 30 held-out identities (it reaches
about 0.92-0.94; 0.84-0.87 already after 50 steps).
"""

import pytest

from train_cli import ROOT, assert_evaluate_reproduces, assert_learned, fit_synthetic

CONFIG = ROOT / "pycrl" / "train" / "configs" / "cae_synthetic.yaml"


@pytest.mark.slow
def test_cae_learns_exports_and_evaluates(synth_task, tmp_path):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run")
    val = assert_learned(model, training, cls="CAE", side=64, min_auc=0.85)
    assert training["config"]["loss"] == {"name": "cae", "recon_weight": 1.0, "recon_loss": "mse", "flood": 0.0}

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
