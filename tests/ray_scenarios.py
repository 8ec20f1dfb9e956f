"""Ray scenarios for tests/test_distributed_ray.py, run on a real local Ray cluster.

    python tests/ray_scenarios.py WORK RAY_TMP     -> WORK/report.json

The test starts this inside fresh network and PID namespaces (loopback only, so
Ray advertises 127.0.0.1; everything Ray started dies with the namespace).
One Ray session serves every scenario, to pay the cluster start once:

  mixed   a folder of good and hostile files, through `pycrl score --ray`
  crash   a detector that kills its actor on chosen inputs
  resume  a job killed with SIGKILL part-way, then run again

``python tests/ray_scenarios.py job ADDRESS DEST INPUTS`` is the job that the
resume scenario kills: a second driver on the same cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pycrl
from pycrl.distributed import read_records, score_with_ray
from pycrl.media.synthetic import write_video

SAMPLES = Path(pycrl.__file__).resolve().parent / "assets" / "samples"
FRAMES = 2  # frames per video: the pipeline is exercised, not the model


def _crashing(decode):
    """A decode stage that kills its process (as a segfaulting decoder would) on inputs named
    ``poison*`` every time, and on ``crash-once*`` the first time only (a flag file next to the
    input remembers); other inputs go to ``decode``."""

    def stage(source):
        name = Path(str(source)).name
        if name.startswith("poison"):
            os._exit(1)
        if name.startswith("crash-once"):
            flag = Path(str(source) + ".crashed")
            if not flag.exists():
                flag.touch()
                os._exit(1)
        return decode(source)

    return stage


def _slow(decode):
    """A decode stage that takes at least half a second per input, so that a job can be killed part-way."""

    def stage(source):
        time.sleep(0.5)
        return decode(source)

    return stage


class CrashingDetector(pycrl.Detector):
    """The standard detector with its decode stage replaced by `_crashing`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipeline.decode = _crashing(self.pipeline.decode)


class SlowDetector(pycrl.Detector):
    """The standard detector with its decode stage replaced by `_slow`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipeline.decode = _slow(self.pipeline.decode)


def _clips(folder: Path, names: list[str]) -> list[Path]:
    """Small inputs: copies of a bundled sample clip (a face) and a face-less synthetic clip."""
    folder.mkdir(parents=True, exist_ok=True)
    face = (SAMPLES / "astronaut_real.mp4").read_bytes()
    out = []
    for name in names:
        path = folder / name
        if "noface" in name:
            write_video(path, [np.full((48, 64, 3), 90, np.uint8)] * 4, rate=10)
        else:
            path.write_bytes(face)
        out.append(path)
    return out


def mixed(work: Path) -> dict:
    from pycrl.cli import main

    folder = work / "mixed"
    folder.mkdir()
    for sample in SAMPLES.glob("*.mp4"):
        (folder / sample.name).write_bytes(sample.read_bytes())
    write_video(folder / "synthetic_noface.mp4", 6, rate=10)  # pycrl.media.synthetic index frames: no face
    clip = (SAMPLES / "astronaut_real.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(clip[: len(clip) // 3])
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video\n")  # not a media suffix: only listed explicitly
    listing = work / "extra.txt"
    named = [folder / "notes.txt", folder / "missing.mp4", folder / "empty.mp4"]  # empty.mp4 twice: one record
    listing.write_text("# named explicitly\n" + "".join(f"{p}\n" for p in named))
    dest = work / "out-mixed"
    argv = ["score", "--ray", str(folder), f"@{listing}", "--dest", str(dest), "--frames", str(FRAMES),
            "--no-progress"]
    t0 = time.monotonic()
    rc = main(argv)
    seconds = time.monotonic() - t0
    first = json.loads((dest / "summary.json").read_text())
    rc_again = main(argv)  # everything is recorded already: nothing is scored again
    return {"rc": rc, "rc_again": rc_again, "seconds": seconds, "summary": first,
            "summary_again": json.loads((dest / "summary.json").read_text()),
            "records": read_records(dest), "folder": str(folder)}


def crash(work: Path) -> dict:
    folder = work / "crash"
    _clips(folder, ["a.mp4", "crash-once.mp4", "b_noface.mp4", "poison.mp4", "c.mp4", "d_noface.mp4"])
    t0 = time.monotonic()
    summary = score_with_ray([folder], work / "out-crash", detector_cls=CrashingDetector, frames=FRAMES,
                             inputs_per_batch=3, num_actors=2, max_restarts=4, max_task_retries=1, progress=False)
    return {"seconds": time.monotonic() - t0, "summary": summary.to_dict(),
            "records": read_records(work / "out-crash"),
            "crash_once_flag": (folder / "crash-once.mp4.crashed").exists()}


def resume(work: Path, address: str) -> dict:
    folder = work / "resume"
    inputs = _clips(folder, [f"clip{i}.mp4" for i in range(6)] + ["clip6_noface.mp4", "clip7_noface.mp4"])
    dest = work / "out-resume"
    job = subprocess.Popen([sys.executable, __file__, "job", address, str(dest), str(folder)])
    parts: list[Path] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and job.poll() is None:
        parts = sorted(dest.glob("part-*.parquet")) if dest.is_dir() else []
        if len(parts) >= 2:
            break
        time.sleep(0.05)
    killed = job.poll() is None
    if killed:
        os.kill(job.pid, signal.SIGKILL)
    job.wait()
    before = read_records(dest)
    # What a kill mid-write leaves behind, and a part damaged after the fact.
    (dest / ".part-20000101T000000-deadbeef-000000.parquet.tmp").write_bytes(b"PAR1 half a part")
    (dest / "part-20000101T000000-deadbeef-000000.parquet").write_bytes(b"not parquet")
    t0 = time.monotonic()
    summary = score_with_ray([folder], dest, detector_cls=SlowDetector, frames=FRAMES, output_format="parquet",
                             progress=False)
    return {"killed": killed, "parts_at_kill": len(parts), "records_before": len(before),
            "inputs": [str(p) for p in inputs], "seconds": time.monotonic() - t0,
            "summary": summary.to_dict(), "records": read_records(dest),
            "files": sorted(p.name for p in dest.iterdir())}


def job(address: str, dest: str, folder: str) -> None:
    score_with_ray([folder], dest, address=address, detector_cls=SlowDetector, frames=FRAMES,
                   output_format="parquet", inputs_per_batch=1, flush_records=1, progress=False)


def main(work: Path, ray_tmp: str) -> None:
    import ray

    t0 = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=ray_tmp, logging_level="WARNING")
    report: dict = {"ray_version": ray.__version__, "ray_start_s": time.monotonic() - t0}
    try:
        report["mixed"] = mixed(work)
        report["crash"] = crash(work)
        report["resume"] = resume(work, ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        report["total_s"] = time.monotonic() - t0
        (work / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "job":
        job(*sys.argv[2:5])
    else:
        main(Path(sys.argv[1]), sys.argv[2])
