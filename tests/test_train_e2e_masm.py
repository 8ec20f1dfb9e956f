"""MASM learns end to end through the command line, as tests/test_train_e2e.py does for CRL:

make-synthetic (procedural faces, self-blended fakes) -> ``pycrl train fit`` with
pycrl/train/configs/masm_synthetic.yaml (ImageNet EfficientNet-Lite0 at 96 px, 32 pointwise convs
split into a frozen principal subspace and 4 artifact subspaces, the gradient-SNR layer mask
on; at most two minutes on 2 cores) -> a model folder that ``pycrl.weights.load`` reads ->
``pycrl train evaluate`` on it reports the validation numbers recorded at training time.

Threshold: frame-level validation AUC >= 0.85 on the 30 held-out identities (it reaches about
0.92-0.94 in its 140 steps; frozen BatchNorm statistics or the head alone stay
below 0.8, see the config).
"""

import pytest

from pycrl.train.engine.logs import read_log
from train_cli import ROOT, assert_evaluate_reproduces, assert_learned, fit_synthetic

CONFIG = ROOT / "pycrl" / "train" / "configs" / "masm_synthetic.yaml"


@pytest.mark.slow
def test_masm_learns_exports_and_evaluates(synth_task, tmp_path):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run")
    val = assert_learned(model, training, cls="MASM", side=96, min_auc=0.85)

    # the mask was applied and logged: half of the 32 layers on after the warm-up, with their SNR
    steps = [r for r in read_log(tmp_path / "run" / "log.jsonl", "step") if "mask/active" in r]
    late = [r for r in steps if r["step"] > model.layer_mask.warmup]
    assert late and all(r["mask/active"] == 16 for r in late)
    assert sum(v for k, v in late[-1].items() if k.startswith("mask/on/")) == 16
    assert all(f"mask/snr/{name}" in late[-1] for name in model.layer_names)

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
