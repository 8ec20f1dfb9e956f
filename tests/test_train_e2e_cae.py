"""CAE learns end to end, through the command line as a user runs it:

make-synthetic (the shared ``synth_task``) -> ``python -m train fit`` with
train/configs/cae_synthetic.yaml (64 px, a lite Xception encoder, at most 800 steps:
about 100 s on 2 quiet cores, stopped at two minutes on busy ones) -> a model folder that
``pycrl.weights.load`` reads -> ``python -m train evaluate`` on it reports the validation
numbers recorded at training time.

Threshold: frame-level validation AUC >= 0.85 on the 30 held-out identities (it reaches
about 0.92-0.94; 0.84-0.87 already after 50 steps).
"""

import pytest

from train_cli import ROOT, assert_evaluate_reproduces, fit_synthetic

CONFIG = ROOT / "train" / "configs" / "cae_synthetic.yaml"
# The time limit stops training after the step that crosses two minutes; the closing
# validation and checkpoint (about a second) follow it.
MAX_SECONDS = 120 + 10


@pytest.mark.slow
def test_cae_learns_exports_and_evaluates(synth_task, tmp_path):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run")
    meta, val = model.pycrl_meta, training["metrics"]["val"]
    assert training["seconds_this_session"] <= MAX_SECONDS, "training must fit in two minutes"
    assert val["auc"] >= 0.85, val
    assert val["n_videos"] == 60 and val["n_frames"] == 120  # 30 held-out identities, real + fake
    assert type(model).__name__ == "CAE" and meta["input_size"] == [3, 64, 64]
    assert training["config"]["loss"] == {"name": "cae", "recon_weight": 1.0, "recon_loss": "mse", "flood": 0.0}
    assert 0.0 < meta["decision_threshold"] < 1.0 and meta["threshold"]["mode"] == "eer"

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
