"""One Detector shared by several threads (a server's request handlers): every result comes
back, identical to the same call made alone."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import pycrl

SAMPLE = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples" / "astronaut_real.mp4"


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_threads_sharing_one_detector_lose_nothing(backend):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8) for n in (1, 7, 32, 40)]
    with pycrl.Detector(backend=backend, frames=4) as det:
        video = det.score_video(SAMPLE)
        assert video.status == "ok" and len(video.faces) == 4
        batches = [det.score_batch(c) for c in crops]

        def task(i):
            if i % 3 == 0:
                r = det.score_video(SAMPLE)
                return "video", None, (r.status, r.score, [f.score for f in r.faces])
            k = i % len(crops)
            return "batch", k, det.score_batch(crops[k])

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(task, range(24)))

    assert len(results) == 24
    for kind, k, got in results:
        if kind == "video":
            assert got == (video.status, video.score, [f.score for f in video.faces])
        else:
            np.testing.assert_array_equal(got, batches[k])
