"""Learning end to end, through the command line as a user runs it:

make-synthetic (procedural faces, self-blended fakes) -> ``pycrl train fit`` with
pycrl/train/configs/crl_tiny_synthetic.yaml (64 px, a lite encoder, at most two minutes on 2 cores)
-> a model folder that ``pycrl.weights.load`` reads -> ``pycrl train evaluate`` on it
reports the validation numbers recorded at training time.

The model is a parameter. ``recce-style`` is RECCE's architecture (3-set graph reasoning,
reconstruction-guided attention) trained with RECCE's paper loss; it is built from the
``crl`` model with JointGR and the difference gate switched off, because ``recce`` itself
only comes with the full 21 M-parameter Xception, far too slow to learn in two minutes here.

Thresholds: validation AUC >= 0.9 per video (each held-out identity is one clip of 2 frames;
its score is the mean over its frames, DeepfakeBench's video AUC) for both; per frame,
CRL (96 px, 360 steps, about 110 s on 2 cores) must reach 0.9, the RECCE-style model at
64 px 0.8 (it reaches about 0.85-0.88 in its budget).
"""

import pytest

from train_cli import ROOT, assert_evaluate_reproduces, assert_learned, fit_synthetic

CONFIG = "crl_tiny_synthetic"  # a shipped config, by name

CASES = [
    pytest.param("crl", ["model.joint_gr=false", "model.diff_gate=false", "loss.name=recce",
                         "loss.recipe=paper"], 0.8, id="recce-style"),
    # CRL at 96 px for a bounded number of steps (about 110 s here), selected on frame AUC:
    # held to the frame-level bar as well.
    pytest.param("crl", ["data.resolution=96", "train.max_steps=360", "train.epochs=40", "train.eval_every=60",
                         "train.threads=2", "train.select_metric=auc"], 0.9, id="crl"),
]


@pytest.mark.slow
@pytest.mark.parametrize("model_name,overrides,min_frame_auc", CASES)
def test_learns_exports_and_evaluates(synth_task, tmp_path, model_name, overrides, min_frame_auc):
    folder, model, training = fit_synthetic(CONFIG, synth_task, tmp_path / "run", f"model.name={model_name}",
                                            *overrides)
    side = 96 if "data.resolution=96" in overrides else 64
    # 360 steps bound this run, not the clock: the seconds bound only keeps CI's time in check
    # (110-121 s measured on this 2-core machine, depending on its load)
    val = assert_learned(model, training, cls="CRL", side=side, min_auc=min_frame_auc, max_seconds=150)
    assert val["video_auc"] >= 0.9, val
    if training["config"]["loss"]["name"] == "crl":
        assert model.pycrl_meta["real_centre"]["initialised"] and model.real_centre.abs().sum() > 0

    assert_evaluate_reproduces(folder, synth_task, val, tmp_path / "val.json")
