"""End to end on the bundled sample clips: pycrl.Detector.score_videos against
the pipeline users write today (decode every frame to RGB, detect faces at
full resolution, score one crop at a time in torch eager), same model, same
frames, same alignment, in one run.

Run: pytest benchmarks/bench_pipeline.py --benchmark-enable
"""

from pathlib import Path

import numpy as np
import pytest

import pycrl
from pycrl.model_folder import ASSETS

CLIPS = sorted((ASSETS / "samples").glob("*.mp4"))
FRAMES = 32

pytestmark = pytest.mark.skipif(not CLIPS or not (ASSETS / "default" / "model.json").is_file(),
                                reason="the bundled default model and sample clips are not installed")


def naive_scores(paths, model, frames: int = FRAMES):
    import av
    import dlib
    import torch

    from pycrl.faces.align import align_crop, five_points
    from pycrl.faces.models import find_landmark_model

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(find_landmark_model(None)))
    scores = []
    for path in paths:
        with av.open(str(path)) as c:
            decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]  # every frame
        probs = []
        for i in np.linspace(0, len(decoded) - 1, frames, dtype=int):
            img = decoded[i]
            rects = detector(img, 1)  # full resolution
            if not rects:
                continue
            r = max(rects, key=lambda r: r.width() * r.height())
            pts = np.array([[p.x, p.y] for p in shapes(img, r).parts()], np.float64)
            crop, _ = align_crop(img, five_points(pts), 256, 1.3)
            size = model.pycrl_meta["input_size"][-1]
            import cv2

            x = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
            with torch.no_grad():  # one crop at a time
                probs.append(float(model(torch.from_numpy(x.transpose(2, 0, 1))[None])["prob"][0]))
        scores.append(float(np.mean(probs)))
    return scores


@pytest.mark.benchmark(group="end to end: sample clips, 32 frames each")
@pytest.mark.parametrize("impl", ["pycrl", "naive"])
def test_pipeline(benchmark, impl):
    if impl == "pycrl":
        det = pycrl.Detector(frames=FRAMES)
        run = lambda: [r.score for r in det.score_videos(CLIPS)]  # noqa: E731
    else:
        import torch

        from pycrl import weights

        torch.set_num_threads(2)
        model = weights.load(ASSETS / "default")
        run = lambda: naive_scores(CLIPS, model)  # noqa: E731
    scores = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["scores"] = scores
    assert len(scores) == len(CLIPS)
