"""`pycrl import-deepfakebench` then pycrl.Detector on the imported folder
reproduces DeepfakeBench's own outputs through an inference backend."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from test_deepfakebench import manifest_and_state, reference


def test_imported_checkpoint_scores_like_deepfakebench(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    _, state = manifest_and_state("xception")  # skips with the reason when ../shared is absent
    ckpt = tmp_path / "ckpt_best.pth"
    torch.save({"module." + k: v for k, v in state.items()}, ckpt)  # as DDP training saves it
    out = tmp_path / "xception-dfb"
    proc = subprocess.run([sys.executable, "-m", "pycrl.cli", "import-deepfakebench", str(ckpt),
                           "--detector", "xception", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.json").is_file() and (out / "model.onnx").is_file()

    import pycrl

    ref = reference("xception")
    with pycrl.Detector(out, backend="onnxruntime") as det:
        prob = det.score_batch(ref["image"].astype(np.float32))  # already normalised NCHW
    np.testing.assert_allclose(prob, ref["prob"], atol=1e-4)


def test_a_wrong_checkpoint_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    proc = subprocess.run([sys.executable, "-m", "pycrl.cli", "import-deepfakebench", str(bad),
                           "--detector", "recce", "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "missing" in proc.stderr.lower()
