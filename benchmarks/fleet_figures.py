"""Per-video costs of each pipeline stage, the inputs of the README's fleet estimate.

    python benchmarks/fleet_figures.py [--frames 32] [--videos 4]

Writes a 10-second 1280x720 H.264 clip (a face from scikit-image's public-domain astronaut
photo, panning so the encoder has motion to code), scores it with ``pycrl.Detector`` on
one thread per stage, and prints per-video seconds of decode and face detection, plus the
network's crops/s for the full CRL configuration (Xception at 256², OpenVINO, batch 32).
Those are CPU core-seconds: the estimate in the README divides a day's work by them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import crops_per_second  # noqa: E402

SECONDS, FPS, WIDTH, HEIGHT = 10, 25, 1280, 720


def write_clip(path: Path) -> Path:
    import av
    from skimage import data

    face = data.astronaut()[:320, 96:416]  # the head and shoulders, 320x320
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(SECONDS * FPS):
            canvas = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
            x = 200 + int(600 * i / (SECONDS * FPS))  # a slow pan across the frame
            canvas[200:520, x:x + 320] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def network_rate() -> float:
    """crops/s of the full CRL (Xception, 256²) on OpenVINO, batch 32."""
    from pycrl.models import create_model

    model = create_model("crl").eval()
    model.pycrl_meta = {**model.default_meta, "input_size": [3, 256, 256]}
    return crops_per_second(model, 256, "openvino")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    p.add_argument("--videos", type=int, default=4, help="scoring repeats (median reported)")
    args = p.parse_args(argv)
    import pycrl

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4")
        det = pycrl.Detector(frames=args.frames, workers=1)
        results = [det.score_video(clip) for _ in range(args.videos)]
    bad = [r for r in results if r.status != "ok"]
    if bad:
        print(f"scoring failed: {bad[0].to_dict()}", file=sys.stderr)
        return 1
    stages = {k: statistics.median(r.timings[k] for r in results) for k in results[0].timings}
    figures = {"clip": f"{SECONDS} s {WIDTH}x{HEIGHT} H.264 {FPS} fps", "frames": args.frames,
               "seconds_per_video": {k: round(v, 3) for k, v in stages.items()},
               "faces_per_video": len(results[0].faces),
               "crl_xception_256_openvino_crops_per_s": round(network_rate(), 1)}
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
