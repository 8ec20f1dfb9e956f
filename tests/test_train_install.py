"""Training from an install: ``pycrl train`` runs outside the repository, finds its shipped
configs by name, and pycrl installs no top-level ``train`` module."""

import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

import pycrl
from pycrl.train.config import ConfigError, load_config, resolve_config, shipped_configs

ROOT = Path(__file__).resolve().parents[1]


def pycrl_train(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pycrl.cli", "train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_no_top_level_train_module_is_installed(tmp_path):
    packages = find_packages(where=str(ROOT), include=["pycrl*"])
    assert "pycrl.train" in packages and "pycrl.train.engine" in packages
    assert not any(p == "train" or p.startswith("train.") for p in packages)
    found = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('train'))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "None", found.stdout


def test_shipped_configs_are_package_data_and_named():
    names = shipped_configs()
    assert {"crl", "crl_faces", "recce", "exposing", "masm", "cae", "crl_tiny_synthetic"} <= set(names)
    package = Path(pycrl.__file__).resolve().parent
    for name in ("crl", "crl_faces.yaml"):
        assert resolve_config(name).resolve().is_relative_to(package / "train" / "configs")
    assert load_config("crl")["model"]["name"] == "crl"
    with pytest.raises(ConfigError, match="not a shipped config.*crl_faces"):
        resolve_config("no_such_config")
    with pytest.raises(ConfigError):
        resolve_config("../configs/crl")  # a name is a bare name, never a path into the package


def test_pycrl_train_runs_outside_the_repository(tmp_path):
    out = pycrl_train("fit", "--config", "crl_faces", "--print-config", "train.epochs=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "name: crl" in out.stdout and "epochs: 3" in out.stdout
    # a config of one's own may start from a shipped one
    (tmp_path / "mine.yaml").write_text("base: crl.yaml\noptim:\n  lr: 0.123\n")
    mine = pycrl_train("fit", "--config", "mine.yaml", "--print-config", cwd=tmp_path)
    assert mine.returncode == 0, mine.stderr
    assert "lr: 0.123" in mine.stdout and "name: crl" in mine.stdout
    missing = pycrl_train("fit", "--config", "nope", cwd=tmp_path)
    assert missing.returncode != 0 and "not a shipped config" in missing.stderr
    helped = pycrl_train("--help", cwd=tmp_path)
    for command in ("build-faces", "make-synthetic", "fit", "evaluate"):
        assert command in helped.stdout


def test_a_missing_train_extra_is_named_not_a_traceback(tmp_path):
    """In a core install (no PyYAML, no torch), a training command says which extra it needs."""
    code = ("import sys; sys.modules['yaml'] = None; from pycrl.cli import main; "
            "sys.exit(main(['train', 'fit', '--config', 'crl', '--print-config']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "needs the [train] extra (no module 'yaml')" in out.stderr and "Traceback" not in out.stderr
