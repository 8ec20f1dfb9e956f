"""`pycrl score` exit codes, as its help states them, with and without --ray."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples" / "astronaut_real.mp4"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pycrl.cli", "score", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_help_states_the_exit_codes_and_the_generated_options():
    out = subprocess.run([sys.executable, "-m", "pycrl.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert "1 when the model or backend cannot be loaded" in out.stdout and "with and without --ray" in out.stdout
    helped = run("--help")
    for flag in ("--frames N", "--sampling {uniform,keyframes}", "--faces {largest,all}", "--threshold T"):
        assert flag in helped.stdout


@pytest.mark.parametrize("ray", [False, True], ids=["here", "ray"])
def test_a_model_that_cannot_load_exits_1(tmp_path, ray):
    extra = ["--ray", "--dest", tmp_path / "out"] if ray else []
    out = run(SAMPLE, "--model", tmp_path / "no-such-model", "--no-progress", *extra)
    assert out.returncode == 1, out.stderr
    assert "not a pycrl model folder" in out.stderr


@pytest.mark.parametrize("ray", [False, True], ids=["here", "ray"])
@pytest.mark.parametrize("option, named", [(["--frames", "0"], "frames"), (["--threshold", "nan"], "threshold"),
                                           (["--batch-size", "100000"], "batch_size"),
                                           (["--operating-point", "fpr=0.5"], "choose from eer, fpr=0.01, fpr=0.05"),
                                           (["--operating-point", "eer", "--threshold", "0.5"], "not both"),
                                           (["--operating-point", "../x y"], "operating_point")])
def test_a_bad_option_is_a_usage_error(tmp_path, ray, option, named):
    extra = ["--ray", "--dest", tmp_path / "out"] if ray else []
    out = run(SAMPLE, *option, "--no-progress", *extra)
    assert out.returncode == 2, out.stderr
    assert named in out.stderr


def test_scores_with_options_from_the_command_line(tmp_path):
    out = run(SAMPLE, "--frames", "3", "--sampling", "uniform", "--aggregation", "max", "--threshold", "0.99",
              "--jsonl", tmp_path / "r.jsonl", "--no-progress")
    assert out.returncode == 0, out.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["frames_sampled"] == 3
    assert record["aggregation"] == "max" and record["threshold"] == 0.99 and record["label"] == "real"
    assert record["operating_point"] == "custom"


def test_an_operating_point_is_picked_and_named(tmp_path):
    out = run(SAMPLE, "--frames", "2", "--operating-point", "fpr=0.01", "--jsonl", "-", "--no-progress")
    assert out.returncode == 0, out.stderr
    (record,) = [json.loads(line) for line in out.stdout.splitlines()]
    card = json.loads((SAMPLE.parents[1] / "default" / "model.json").read_text())
    assert record["operating_point"] == "fpr=0.01" and record["notices"] == []
    assert record["threshold"] == card["operating_points"]["fpr=0.01"]


def test_unwritable_jsonl_fails_before_the_model_loads(tmp_path):
    out = run(SAMPLE, "--jsonl", tmp_path / "no-such-dir" / "r.jsonl", "--model", tmp_path / "no-model",
              "--no-progress")
    assert out.returncode == 2 and "cannot write --jsonl" in out.stderr
    assert "Traceback" not in out.stderr and "model" not in out.stderr.split("--jsonl")[0]


def test_names_that_are_not_utf8_keep_every_record(tmp_path):
    import os
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"clip-\xff\xfe.mp4")
    shutil.copyfile(SAMPLE, odd)
    (folder / "broken.mp4").write_bytes(b"\x00" * 64)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run([sys.executable, "-m", "pycrl.cli", "score", str(folder), "--frames", "2", "--jsonl", "-",
                           "--no-progress"], capture_output=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    rows = [json.loads(line) for line in proc.stdout.decode("ascii").splitlines()]
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok", "error"}
    names = {os.fsencode(r["source"]) for r in rows}  # JSON carries the name; Python's escape maps it back
    assert odd in names
    assert b"\\xff\\xfe" in proc.stderr  # the human line shows the bytes escaped
