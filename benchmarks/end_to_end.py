"""End to end on ten-second 720p clips of a real face: pycrl against a DeepfakeBench-style pipeline.

    python benchmarks/end_to_end.py [--videos 16] [--baseline-videos 2] [--frames 32]

pycrl: ``pycrl.Detector(frames=32).score_videos(clips)`` with the default model and default
options (decode of the sampled frames, face detection and inference overlapping across videos).
Reference, as DeepfakeBench's preprocessing and evaluation do it: decode every frame to RGB,
dlib HOG on the full frame (upsampled once), 5-point alignment, and one crop at a time through
the full RECCE (Xception, 256²) in torch eager. The reference is slow, so it scores fewer clips;
both report videos per second, so the ratio compares rates measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import naive_scores  # noqa: E402  (the reference pipeline)
from fleet_figures import HEIGHT, SECONDS, WIDTH, write_clip  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=16, help="clips scored by pycrl (default 16)")
    p.add_argument("--baseline-videos", type=int, default=2, help="clips scored by the reference (default 2)")
    p.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    args = p.parse_args(argv)
    import torch

    import pycrl
    from pycrl.models import create_model

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        first = write_clip(Path(tmp) / "clip00.mp4")
        clips = [first] + [Path(shutil.copy(first, Path(tmp) / f"clip{i:02d}.mp4")) for i in range(1, args.videos)]

        with pycrl.Detector(frames=args.frames) as det:
            det.score_video(clips[0])  # warm-up: graph compiled, caches filled
            t0 = time.perf_counter()
            results = list(det.score_videos(clips))
            ours = time.perf_counter() - t0
        failed = [r.to_dict() for r in results if r.status != "ok"]
        if failed:
            print(f"scoring failed: {failed[0]}", file=sys.stderr)
            return 1

        recce = create_model("recce").eval()  # the full RECCE: Xception encoder, 256²
        recce.pycrl_meta = {**recce.default_meta, "input_size": [3, 256, 256]}
        t0 = time.perf_counter()
        naive_scores(clips[: args.baseline_videos], recce, frames=args.frames)
        theirs = time.perf_counter() - t0

    ours_rate, their_rate = args.videos / ours, args.baseline_videos / theirs
    stages = {k: round(sum(r.timings.get(k, 0.0) for r in results) / len(results), 3)
              for k in ("decode", "detect", "infer", "prepare_wall")}
    print(json.dumps({
        "clip": f"{SECONDS} s {WIDTH}x{HEIGHT} H.264", "frames": args.frames,
        "pycrl": {"videos": args.videos, "seconds": round(ours, 2), "videos_per_s": round(ours_rate, 3),
                  "wall_seconds_per_clip": round(ours / args.videos, 3), "mean_stage_seconds": stages,
                  "model": results[0].model, "backend": results[0].backend},
        "deepfakebench_style": {"videos": args.baseline_videos, "seconds": round(theirs, 2),
                                "videos_per_s": round(their_rate, 3)},
        "ratio": round(ours_rate / their_rate, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
