"""Helpers shared by the test_runtime_* files (no tests of its own)."""

import numpy as np
import pytest
import torch

from pycrl import weights
from pycrl.models import create_model

SIZE = 64  # input side used by the runtime tests: every detector runs at 64 px


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensors gain nothing from a second thread on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep exported artefacts out of the user's cache."""
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "pycrl-cache"))


def calibrate_batchnorm(model: torch.nn.Module, size: int = SIZE, seed: int = 0) -> torch.nn.Module:
    """Set every BatchNorm's running statistics from one random batch, as BN
    recalibration does, so activations keep unit scale through the depth of
    a freshly initialised network and outputs genuinely depend on the input
    (with default statistics they shrink towards constants, and any backend
    would "match" torch). Eight samples: with two, late low-resolution
    stages get near-zero variances whose inverse blows activations up."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model(torch.rand(8, 3, size, size, generator=gen) * 2 - 1)
    return model.eval()


def saved_detector(folder, name: str, size: int = SIZE, seed: int = 0, **cfg):
    """A calibrated detector saved as a model folder for ``size`` px input."""
    torch.manual_seed(seed)
    model = calibrate_batchnorm(create_model(name, **cfg), size, seed)
    weights.save(model, folder, {"input_size": [3, size, size]})
    return folder


def batch(n: int, size: int = SIZE, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, 3, size, size), dtype=np.float32) * 2 - 1)


def assert_outputs_close(got, expected, rel: float, what: str = "") -> None:
    """max |got - expected| <= rel * max(1, max |expected|), output by output."""
    assert set(got) == set(expected), (set(got), set(expected))
    for key, e in expected.items():
        g = got[key]
        assert g.shape == e.shape and g.dtype == np.float32, (what, key, g.shape, e.shape)
        err = float(np.abs(g - e).max())
        bound = rel * max(1.0, float(np.abs(e).max()))
        assert err <= bound, f"{what} {key}: max abs diff {err:.3g} > {bound:.3g}"
