"""The face stage per video: YuNet (the default) against dlib HOG, same frames, same run.

32 frames of 1280x720 (scikit-image's public-domain astronaut, head and shoulders, panning over
a grey background as in `fleet_figures.py`), each stage as `Pipeline` runs it with the default
options ("largest" face): detection, dlib's 5-point landmarks and the aligned 256x256 crop.
YuNet's stage gets the frames in chunks of `YuNetFaces.batch_frames`, dlib's one by one.

Run: pytest benchmarks/bench_faces.py --benchmark-enable
"""

import numpy as np
import pytest

from pycrl.options import ScoringOptions
from pycrl.pipeline import DlibFaces, YuNetFaces

FRAMES, WIDTH, HEIGHT = 32, 1280, 720


def video_frames() -> list[np.ndarray]:
    from skimage import data

    face = data.astronaut()[:320, 96:416]
    frames = []
    for i in range(FRAMES):
        canvas = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        x = 200 + int(600 * i / FRAMES)
        canvas[200:520, x:x + 320] = face
        frames.append(canvas)
    return frames


def stage(impl: str):
    o = ScoringOptions()
    if impl == "dlib":
        faces = DlibFaces(mode=o.faces.value, size=256, scale=1.3, min_size=o.face_min_size)
        return lambda frames: [faces(f) for f in frames]
    faces = YuNetFaces(mode=o.faces.value, size=256, scale=1.3, min_size=o.face_min_size,
                       min_score=o.face_min_score, landmarks=o.face_landmarks.value)
    step = faces.batch_frames
    return lambda frames: [found for i in range(0, len(frames), step) for found in faces.batch(frames[i:i + step])]


@pytest.mark.benchmark(group=f"face stage: {FRAMES} frames of {WIDTH}x{HEIGHT}, largest face")
@pytest.mark.parametrize("impl", ["yunet", "dlib"])
def test_face_stage(benchmark, impl):
    frames = video_frames()
    run = stage(impl)
    found = benchmark.pedantic(run, args=(frames,), rounds=5, warmup_rounds=1)
    assert len(found) == FRAMES and all(len(faces) == 1 for faces in found)
    benchmark.extra_info["faces"] = sum(len(f) for f in found)
