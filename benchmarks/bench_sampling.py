"""Uniform sampling's cost against a video's length: 32 frames from a 10 s and a 10 min 720p clip.

A script (not a pytest benchmark): writes both clips (not timed), then times
``list(sample_frames(path, n=32))`` on each, and the decode-everything path
(``FrameSampler(..., _seek=False)``: every frame up to the last one kept, the
reference) in the same run, and prints the times and ratios.

    python benchmarks/bench_sampling.py [--repeat 3] [--gop 250] [--folder DIR]

Clips: 1280x720 H.264 (libx264, preset ultrafast, 25 fps, one key frame
every ``--gop`` frames: 250 is libx264's default keyint), a cheap pattern
made directly in YUV (a still gradient with a textured square moving across
it), so writing 15,000 frames takes well under a minute. Seeking decodes
from the key frame before each sampled frame, so the long clip's cost is
about 32 x (gop / 2) decoded frames, whatever its length.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycrl.media import sample_frames  # noqa: E402
from pycrl.media.video import FrameSampler  # noqa: E402

WIDTH, HEIGHT, RATE, N = 1280, 720, 25, 32


def write_clip(path: Path, seconds: float, gop: int) -> Path:
    """A 1280x720 H.264 clip: gradient background, a 160x160 textured square moving across."""
    frames = int(round(seconds * RATE))
    rng = np.random.default_rng(0)
    x = np.linspace(32, 224, WIDTH, dtype=np.float32)
    y = np.linspace(0, 48, HEIGHT, dtype=np.float32)[:, None]
    background = (x[None, :] * 0.7 + y).astype(np.uint8)
    square = rng.integers(0, 256, (160, 160), dtype=np.uint8)
    plane = np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8)
    plane[HEIGHT:] = 128  # chroma: grey
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"preset": "ultrafast", "keyint": str(gop), "min-keyint": str(gop)}
        for i in range(frames):
            plane[:HEIGHT] = background
            left = (i * 8) % (WIDTH - 160)
            top = 120 + (i * 3) % (HEIGHT - 400)
            plane[top : top + 160, left : left + 160] = square
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, RATE)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _sampler(path: Path, seek: bool) -> FrameSampler:
    return sample_frames(str(path), n=N) if seek else FrameSampler(str(path), n=N, _seek=False)


def timed(path: Path, repeat: int, seek: bool) -> tuple[float, FrameSampler]:
    """Median wall time of ``list(sample_frames(path, n=32))`` (after one untimed warm-up)."""
    times = []
    list(_sampler(path, seek))  # warm-up: file in the page cache, libraries loaded
    for _ in range(repeat):
        sampler = _sampler(path, seek)
        start = time.perf_counter()
        frames = list(sampler)
        times.append(time.perf_counter() - start)
        assert len(frames) == N, len(frames)
    return statistics.median(times), sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--gop", type=int, default=250, help="frames between key frames")
    parser.add_argument("--folder", help="where to write the clips (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        clips = {}
        for name, seconds in (("10 s", 10), ("10 min", 600)):
            path = folder / f"clip_{seconds}s_gop{args.gop}.mp4"
            start = time.perf_counter()
            if not path.exists():
                write_clip(path, seconds, args.gop)
            print(f"{name}: {path.name}, {os.path.getsize(path) / 1e6:.1f} MB "
                  f"(written in {time.perf_counter() - start:.1f} s, not timed)", flush=True)
            clips[name] = path

        print(f"\nlist(sample_frames(path, n={N})), median of {args.repeat} "
              f"({os.cpu_count()} CPUs, PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}):")
        results = {}
        for name, path in clips.items():
            for seek in (True, False):
                seconds, sampler = timed(path, args.repeat, seek)
                stats = sampler.stats
                results[name, seek] = seconds
                label = "seeking        " if seek else "decode-all (ref)"
                print(f"  {name:>6} {label} {seconds:7.3f} s   decoded {stats.decoded:6d} frames, "
                      f"{stats.seeks} seeks" + (f"; sequential: {stats.sequential}" if stats.sequential else ""),
                      flush=True)

        short, long = results["10 s", True], results["10 min", True]
        print(f"\n10 min / 10 s, seeking:     {long / short:.2f}x  (target: at most 3x)")
        print(f"10 min / 10 s, decode-all:  {results['10 min', False] / results['10 s', False]:.2f}x")
        print(f"10 min, decode-all / seeking: {results['10 min', False] / long:.1f}x faster")


if __name__ == "__main__":
    main()
