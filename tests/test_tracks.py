"""Per-person verdicts: faces linked across sampled frames into tracks, each scored on its own,
the video decided by its most suspicious person (``faces="all"``)."""

import av
import numpy as np
import pytest

import pycrl
from pycrl.media.synthetic import write_video
from pycrl.model_folder import ASSETS
from pycrl.pipeline.tracks import link
from pycrl.results import FaceScore

SAMPLES = ASSETS / "samples"


def _face(frame, x, y, size=100, score=0.5):
    points = np.array([[x + 30, y + 40], [x + 70, y + 40], [x + 50, y + 60], [x + 35, y + 80], [x + 65, y + 80]],
                      np.float32)
    return FaceScore(frame, frame / 10, (x, y, x + size, y + size), score, points=points)


def test_two_people_moving_with_a_missed_frame():
    faces = []
    for f in range(8):
        faces.append(_face(f, 10 + 12 * f, 50))  # walks right, 12 px per sampled frame
        if f != 3:  # missed in one frame
            faces.append(_face(f, 600 - 10 * f, 60))  # walks left
    tracks = link(faces)
    assert [len(t) for t in tracks] == [8, 7]
    assert all(f.box[0] < 300 for f in tracks[0]) and all(f.box[0] > 300 for f in tracks[1])
    assert {f.track for f in tracks[0]} == {0} and {f.track for f in tracks[1]} == {1}


def test_a_face_gone_too_long_starts_a_new_track():
    faces = [_face(0, 10, 10), _face(1, 12, 10), _face(6, 14, 10)]  # absent for 4 sampled frames
    assert [len(t) for t in link(faces, range(7), max_gap=2)] == [2, 1]
    assert [len(t) for t in link(faces, range(7), max_gap=4)] == [3]
    assert [len(t) for t in link(faces, max_gap=2)] == [3]  # without the sampled frames: no gap seen


def test_far_apart_faces_in_one_frame_never_merge():
    faces = [_face(0, 0, 0), _face(0, 150, 0), _face(1, 2, 0), _face(1, 152, 0)]
    assert [[f.box[0] for f in t] for t in link(faces)] == [[0, 2], [150, 152]]


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """The bundled real astronaut on the left and her self-blended twin on the right, the pair
    drifting across the frame; then the pair swapped sides."""
    real = [f.to_ndarray(format="rgb24") for f in av.open(str(SAMPLES / "astronaut_real.mp4")).decode(video=0)]
    fake = [f.to_ndarray(format="rgb24") for f in av.open(str(SAMPLES / "astronaut_selfblend.mp4")).decode(video=0)]
    out = {}
    for name, (left, right) in {"real_left": (real, fake), "fake_left": (fake, real)}.items():
        frames = []
        for i, (a, b) in enumerate(zip(left, right)):
            canvas = np.full((480, 864, 3), 40, np.uint8)
            dx = i // 2  # drifting half a pixel per frame
            canvas[48:432, 16 + dx:400 + dx] = a
            canvas[48:432, 432 + dx:816 + dx] = b
            frames.append(canvas)
        out[name] = write_video(tmp_path_factory.mktemp("clips") / f"{name}.mp4", frames, width=864, height=480)
    return out


def test_each_person_gets_a_score_and_the_video_the_worst(two_people):
    with pycrl.Detector(frames=8, faces="all") as det:
        results = list(det.score_videos([two_people["real_left"], two_people["fake_left"]]))
    for result, fake_side in zip(results, ("right", "left")):
        assert result.status == "ok", result.message
        assert result.score_rule == "person"
        assert len(result.tracks) == 2, [(t.faces, t.timeline[0].box) for t in result.tracks]
        by_side = {("left" if t.timeline[0].box[0] < 432 else "right"): t for t in result.tracks}
        real_side = "left" if fake_side == "right" else "right"
        fake, real = by_side[fake_side], by_side[real_side]
        assert fake.faces == real.faces == 8 and fake.counted and real.counted
        assert fake.label == "fake" and real.label == "real", (fake.score, real.score, det.threshold)
        assert result.score == pytest.approx(fake.score) and result.label == "fake"
        # the timeline: one point per sampled frame, in time order, each face tagged with its track
        times = [p.timestamp for p in fake.timeline]
        assert times == sorted(times) and len(set(times)) == 8
        assert {f.track for f in result.faces} == {0, 1}
        record = result.to_dict()
        assert {"id", "score", "label", "faces", "counted", "timeline"} <= set(record["tracks"][0])
        assert set(record["tracks"][0]["timeline"][0]) == {"frame_index", "timestamp", "score", "box"}


def test_largest_face_keeps_the_protocol_rule(two_people):
    with pycrl.Detector(frames=4) as det:
        result = det.score_video(two_people["real_left"])
    assert result.status == "ok" and result.score_rule == "frames"
    assert result.operating_point == det.pipeline.aggregate.decision.point
