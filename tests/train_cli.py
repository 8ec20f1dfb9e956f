"""Running ``pycrl train`` as a user does, for the learning tests of every detector."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Reals and self-blended fakes: the synthetic task every detector's learning test uses.
SYNTH_KEYS = ["Synthetic_real", "Synthetic_FakeSBI"]


def run_train(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``pycrl train ARGS`` run from outside the repository, as an installed package runs."""
    with tempfile.TemporaryDirectory() as elsewhere:
        proc = subprocess.run([sys.executable, "-m", "pycrl.cli", "train", *args], cwd=elsewhere, capture_output=True,
                              text=True, timeout=timeout)
    assert proc.returncode == 0, f"pycrl train {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_synthetic(out: Path) -> Path:
    # Many identities with few frames each: held-out identities are what a model must
    # generalise to, and rendering time grows with frames, not identities.
    run_train("make-synthetic", "--out", str(out), "--identities", "200", "--frames-per-id", "2",
              "--val-identities", "30", "--test-identities", "10", "--workers", "2", "--no-progress",
              "--overwrite")
    return out


def synth_overrides(synth: Path) -> list[str]:
    """``key=value`` overrides pointing every split of a config at the synthetic set."""
    json_path = synth / "dataset_json" / "Synthetic.json"
    out = []
    for split in ("train", "val", "test"):
        out += [f"data.{split}.type=deepfakebench", f"data.{split}.json={json_path}",
                f"data.{split}.rgb_dir={synth}", f"data.{split}.split={split}", f"data.{split}.frame_num=null",
                f"data.{split}.label_keys=[{', '.join(SYNTH_KEYS)}]"]
    return out


def fit_synthetic(config: Path, synth: Path, out: Path, *overrides: str):
    """``pycrl train fit`` of ``config`` on the synthetic task into ``out``; returns the
    model folder, the model loaded from it and the training record of its model.json."""
    from pycrl import weights

    run_train("fit", "--config", str(config), *overrides, *synth_overrides(synth), f"output.dir={out}",
              "train.progress=false")
    folder = out / "model"
    model = weights.load(folder)
    return folder, model, model.pycrl_meta["provenance"]["training"]


def assert_evaluate_reproduces(folder: Path, synth: Path, val: dict, report: Path) -> None:
    """``pycrl train evaluate`` of a model folder on the validation split reports the
    numbers recorded at training time."""
    import json

    import pytest

    run_train("evaluate", "--model", str(folder), "--data", str(synth / "dataset_json" / "Synthetic.json"),
              "--rgb-dir", str(synth), "--split", "val", "--frame-num", "0", "--label-keys", *SYNTH_KEYS,
              "--workers", "0", "--threads", "1", "--no-progress", "--out", str(report))
    got = json.loads(report.read_text())["metrics"]
    for key in ("auc", "video_auc", "eer", "ap", "acc", "n_frames", "n_videos", "acc_at_threshold"):
        assert got[key] == pytest.approx(val[key], abs=1e-6), key


# train.time_limit_minutes: 2 is checked between steps; the closing validation and export
# (a few seconds) follow the step that crosses it.
MAX_TRAIN_SECONDS = 120 + 10


def assert_learned(model, training: dict, *, cls: str, side: int, min_auc: float,
                   max_seconds: float = MAX_TRAIN_SECONDS) -> dict:
    """What every learning test holds a run on the synthetic task to; returns the
    validation metrics for the test's own checks."""
    meta, val = model.pycrl_meta, training["metrics"]["val"]
    assert training["seconds_this_session"] <= max_seconds, "training must fit in two minutes"
    assert val["auc"] >= min_auc, val
    assert val["n_videos"] == 60 and val["n_frames"] == 120  # 30 held-out identities, real + fake
    assert training["metrics"]["test"]["n_frames"] == 40
    assert type(model).__name__ == cls and meta["input_size"] == [3, side, side]
    assert 0.0 < meta["decision_threshold"] < 1.0 and meta["threshold"]["mode"] == "eer"
    return val
