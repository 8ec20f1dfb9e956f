"""pycrl.distributed: scoring on Ray Data actor pools, resumably.

The Ray tests run a real local Ray cluster (no mocks) through
tests/ray_scenarios.py, in fresh network and PID namespaces: with only a
loopback interface Ray advertises 127.0.0.1, and whatever Ray starts dies
with the namespace. That needs root and util-linux's `unshare`; elsewhere
they skip and say why. The other tests need neither Ray nor a cluster.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from pycrl.results import FaceScore, Result

SCENARIOS = Path(__file__).with_name("ray_scenarios.py")
NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
RAY_BUDGET_S = 170  # all Ray scenarios; they take about a minute on 2 cores


# -- without a cluster -------------------------------------------------------------


def test_importing_pycrl_does_not_import_ray():
    code = "import sys, pycrl.distributed, pycrl.cli; assert 'ray' not in sys.modules and 'pyarrow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _results() -> list[Result]:
    ok = Result(source="/d/a.mp4", status="ok", score=0.9, label="fake", threshold=0.5, compactness=0.4,
                frames_sampled=2, faces=[FaceScore(0, 0.0, (1.0, 2.0, 3.0, 4.0), 0.9, None),
                                         FaceScore(5, 0.2, (1.0, 2.0, 3.0, 4.0), float("nan"), 0.3)],
                timings={"decode": 0.1, "detect": 0.2, "infer": 0.05}, model="m", backend="openvino")
    bad = Result.failure(ValueError("broken"), source="/d/b.mp4", timings={"prepare_wall": 0.01})
    none = Result(source="/d/c.mp4", status="no_face", message="no face found", frames_sampled=2)
    return [ok, bad, none]


def test_parquet_schema_covers_every_result_field():
    pytest.importorskip("pyarrow")
    from pycrl.distributed.records import arrow_schema

    assert arrow_schema().names == list(_results()[0].to_dict())


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_parts_round_trip_the_result_schema(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    from pycrl.distributed.resume import done_sources, read_records
    from pycrl.distributed.sink import PartWriter

    writer = PartWriter(tmp_path, fmt, flush_records=2)
    for r in _results():
        writer.add(json.dumps(r.to_dict()))
    assert len(list(tmp_path.glob("part-*"))) == 1  # the first two, flushed when the buffer filled
    writer.close()
    assert writer.parts_written == 2 and not list(tmp_path.glob(".*.tmp"))
    assert read_records(tmp_path) == [r.to_dict() for r in _results()]
    assert done_sources(tmp_path) == {"/d/a.mp4", "/d/b.mp4", "/d/c.mp4"}


def test_resume_ignores_temporaries_and_sets_unreadable_parts_aside(tmp_path):
    from pycrl.distributed.resume import done_sources, remove_stale_temporaries

    (tmp_path / "part-1-000000.jsonl").write_text(json.dumps({"source": "/x"}) + "\n")
    (tmp_path / ".part-2-000000.jsonl.tmp").write_text('{"source": "/half')  # a killed job's write
    (tmp_path / "part-3-000000.parquet").write_bytes(b"not parquet")
    (tmp_path / "summary.json").write_text("{}")
    assert remove_stale_temporaries(tmp_path) == 1
    assert done_sources(tmp_path) == {"/x"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-1-000000.jsonl", "part-3-000000.parquet.unreadable", "summary.json"]


def test_destination_lock_is_exclusive(tmp_path):
    from pycrl.distributed.sink import DestinationBusy, DestinationLock

    with DestinationLock(tmp_path), pytest.raises(DestinationBusy, match="in use by another pycrl job"), \
            DestinationLock(tmp_path):
        pass
    with DestinationLock(tmp_path):  # released
        pass


def test_collect_inputs_expands_folders_globs_and_lists(tmp_path, monkeypatch):
    from pycrl.distributed import collect_inputs

    (tmp_path / "v").mkdir()
    for name in ("a.mp4", "b.jpg", "skip.txt"):
        (tmp_path / "v" / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# comment\n\nv/a.mp4\nv/skip.txt\nnothing-*.mp4\n")
    monkeypatch.chdir(tmp_path)
    paths, unmatched = collect_inputs(["v", "@list.txt", "v/*.jpg"])
    v = tmp_path / "v"
    assert paths == [str(v / "a.mp4"), str(v / "b.jpg"), str(v / "skip.txt")]  # absolute, once each, in order
    assert unmatched == ["nothing-*.mp4"]
    with pytest.raises(FileNotFoundError, match="input list"):
        collect_inputs(["@absent.txt"])


def test_bad_arguments_fail_before_any_cluster_starts(tmp_path):
    from pycrl.distributed import score_with_ray
    from pycrl.model_folder import ModelFolderError

    clip = str(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="output_format"):
        score_with_ray([clip], tmp_path / "o", output_format="csv")
    with pytest.raises(ValueError, match="bounded"):
        score_with_ray([clip], tmp_path / "o", max_task_retries=-1)
    with pytest.raises(ModelFolderError, match="not a pycrl model folder"):
        score_with_ray([clip], tmp_path / "o", model=tmp_path / "no-model")
    with pytest.raises(ValueError, match="no inputs"):
        score_with_ray([str(tmp_path / "*.nothing")], tmp_path / "o")


def test_cli_ray_options_are_checked(tmp_path, capsys):
    from pycrl.cli import main

    assert main(["score", "a.mp4", "--dest", str(tmp_path)]) == 2
    assert "--dest need --ray" in capsys.readouterr().err
    assert main(["score", "a.mp4", "--ray", "--jsonl", "x.jsonl"]) == 2
    assert main(["score", "a.mp4", "--ray", "--model", str(tmp_path / "none"), "--dest", str(tmp_path)]) == 1
    assert "not a pycrl model folder" in capsys.readouterr().err


class _FlakyDetector:
    """A stand-in detector (not Ray): its batch call raises, and one input raises alone."""

    model_id, backend = "flaky", "none"

    def __init__(self, model, **options):
        self.options = options

    def score_videos(self, paths):
        raise RuntimeError("backend fell over")

    def score_video(self, path):
        if "bad" in path:
            raise MemoryError()
        return Result(source=path, status="no_face", frames_sampled=self.options["frames"])


def test_actor_returns_one_record_per_path_even_when_the_batch_call_raises():
    import numpy as np

    from pycrl.distributed.actor import ScoringActor

    actor = ScoringActor("m", {"frames": 3}, detector_cls=_FlakyDetector)
    out = actor({"path": np.array(["/a.mp4", "/bad.mp4", "/c.mp4"], dtype=object)})
    assert list(out["source"]) == ["/a.mp4", "/bad.mp4", "/c.mp4"]
    assert list(out["status"]) == ["no_face", "error", "no_face"]
    bad = json.loads(out["record"][1])
    assert (bad["error_type"], bad["message"], bad["model"]) == ("MemoryError", "MemoryError", "flaky")
    assert json.loads(out["record"][0])["frames_sampled"] == 3


def test_summary_reports_counts_throughput_and_stages():
    from pycrl.distributed import JobSummary

    s = JobSummary(dest="out", output_format="jsonl", inputs=4, skipped=1, actors=2, seconds=2.0)
    for r in _results():
        s.add(r.to_dict())
    text = s.format()
    assert (s.ok, s.failed, s.no_face, s.processed) == (1, 1, 1, 3)
    assert "3 processed (1 scored, 1 without faces, 1 errors), 1 skipped" in text
    assert "1.50 items/s on 2 actors" in text
    assert "decode 0.1 s" in text and "infer 0.1 s" in text and "prepare_wall" in text


def test_progress_logs_items_per_second_off_a_terminal(capsys):
    from pycrl.distributed.summary import Progress

    bar = Progress(total=2, enabled=True, log_every=0.0)  # pytest's stderr is no terminal: log lines
    bar.update()
    bar.close()
    assert re.search(r"pycrl ray: 1/2 inputs, [0-9.]+ items/s", capsys.readouterr().err)


# -- on a real local Ray cluster ------------------------------------------------------


def _why_no_cluster() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (pip install 'pycrl[ray]')"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: Ray runs in a loopback-only network namespace (unshare --net)"
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "needs unshare (util-linux) and ip (iproute2)"
    probe = subprocess.run([*NAMESPACE, "ip", "link", "set", "lo", "up"], check=False, capture_output=True, text=True)
    if probe.returncode:
        return f"cannot create network and PID namespaces here: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Runs every Ray scenario once, in one Ray session; their findings as a dict."""
    reason = _why_no_cluster()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("ray-work")
    ray_tmp = tmp_path_factory.mktemp("r")
    owned_tmp = len(str(ray_tmp)) > 40  # Ray's unix sockets live below it; their paths must stay < 108 bytes
    if owned_tmp:
        ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
    cmd = NAMESPACE + ["sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, str(SCENARIOS),
                       str(work), str(ray_tmp)]
    try:
        proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=RAY_BUDGET_S)
    finally:
        if owned_tmp:
            shutil.rmtree(ray_tmp, ignore_errors=True)
    if proc.returncode or not (work / "report.json").exists():
        pytest.fail(f"ray scenarios failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return json.loads((work / "report.json").read_text())


def _by_name(records: list[dict]) -> dict[str, dict]:
    counts = Counter(r["source"] for r in records)
    assert max(counts.values()) == 1, f"duplicate records: {[s for s, n in counts.items() if n > 1]}"
    return {Path(r["source"]).name: r for r in records}


def test_mixed_folder_gets_one_record_per_input(report):
    mixed = report["mixed"]
    assert mixed["rc"] == 0
    recs = _by_name(mixed["records"])
    assert sorted(recs) == sorted(["astronaut_real.mp4", "astronaut_selfblend.mp4", "synthetic_noface.mp4",
                                   "truncated.mp4", "random.mp4", "empty.mp4", "notes.txt", "missing.mp4"])
    for name in ("astronaut_real.mp4", "astronaut_selfblend.mp4"):
        assert recs[name]["status"] == "ok" and 0.0 <= recs[name]["score"] <= 1.0
        assert recs[name]["frames_sampled"] == 2 and recs[name]["model"] == "crl-faces"
        assert {"decode", "detect", "infer"} <= set(recs[name]["timings"])
    assert recs["synthetic_noface.mp4"]["status"] == "no_face"
    errors = {name: r["error_type"] for name, r in recs.items() if r["status"] == "error"}
    assert errors == {"truncated.mp4": "CorruptMediaError", "random.mp4": "UnsupportedMediaError",
                      "empty.mp4": "CorruptMediaError", "notes.txt": "UnsupportedMediaError",
                      "missing.mp4": "MediaNotFoundError"}
    s = mixed["summary"]
    assert (s["inputs"], s["ok"], s["no_face"], s["failed"], s["skipped"]) == (8, 2, 1, 5, 0)
    assert s["items_per_s"] > 0 and s["stage_seconds"]["detect"] > 0


def test_running_again_skips_what_is_recorded(report):
    again = report["mixed"]["summary_again"]
    assert report["mixed"]["rc_again"] == 0
    assert (again["inputs"], again["skipped"], again["processed"]) == (8, 8, 0)


def test_crashing_actor_is_restarted_and_only_the_poisoned_input_fails(report):
    crash = report["crash"]
    recs = _by_name(crash["records"])
    assert len(recs) == 6
    assert crash["crash_once_flag"]  # crash-once.mp4 did kill its actor once...
    assert recs["crash-once.mp4"]["status"] == "ok"  # ...and was scored on the retry
    assert recs["poison.mp4"]["status"] == "error" and recs["poison.mp4"]["error_type"] == "WorkerDied"
    assert "alone" in recs["poison.mp4"]["message"]
    assert all(recs[n]["status"] == "ok" for n in ("a.mp4", "c.mp4"))
    assert all(recs[n]["status"] == "no_face" for n in ("b_noface.mp4", "d_noface.mp4"))
    s = crash["summary"]
    assert (s["ok"], s["no_face"], s["failed"]) == (3, 2, 1)
    assert 1 <= s["isolated"] <= 3  # the poisoned batch, scored again one input per batch


def test_killed_job_resumes_without_rescoring_or_duplicates(report):
    res = report["resume"]
    assert res["killed"], "the job finished before it could be killed"
    assert 0 < res["records_before"] < len(res["inputs"])
    recs = _by_name(res["records"])
    assert sorted(r["source"] for r in recs.values()) == sorted(res["inputs"])
    assert all(r["status"] in ("ok", "no_face") for r in recs.values())
    s = res["summary"]
    assert s["skipped"] == res["records_before"]
    assert s["processed"] == len(res["inputs"]) - res["records_before"]
    assert not [f for f in res["files"] if f.endswith(".tmp")]  # the killed write's temporary is gone
    assert "part-20000101T000000-deadbeef-000000.parquet.unreadable" in res["files"]
