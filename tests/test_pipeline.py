"""pycrl.pipeline: the stages are typed and each can be replaced on its own."""

import numpy as np
import pytest

import pycrl
from pycrl.faces import Face
from pycrl.media import CorruptMediaError, Frame
from pycrl.model_card import Decision, ModelCard
from pycrl.options import ScoringOptions
from pycrl.pipeline import Aggregate, MediaDecoder, Pipeline, ScoreStage, build_pipeline, frame_scores
from pycrl.results import FaceScore
from pycrl.runtime import open_backend



class GreyFrames:
    """A decoder stage of our own: ``n`` flat frames at 5 fps, indices 10, 20, ..."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at

    def __call__(self, source):
        for k in range(self.n):
            if k == self.fail_at:
                raise CorruptMediaError(source, "broken in the middle")
            yield Frame(index=10 * (k + 1), time=2.0 * (k + 1), image=np.full((90, 120, 3), 40 * k, np.uint8),
                        key_frame=k == 0)


class CentreFaces:
    """A face stage of our own: two fixed 'faces' per frame, aligned by plain resizing."""

    def __init__(self, side: int):
        self.side = side

    def __call__(self, image):
        import cv2

        faces = []
        for box in ((10.0, 10.0, 60.0, 60.0), (50.0, 20.0, 110.0, 80.0)):
            x0, y0, x1, y1 = (int(v) for v in box)
            crop = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (self.side, self.side))
            faces.append(Face(box=np.array(box), score=1.0, landmarks=np.zeros((5, 2)), points=np.zeros((5, 2)),
                              crop=crop, matrix=np.eye(2, 3)))
        return faces


@pytest.fixture(scope="module")
def card():
    return ModelCard.read("default")


@pytest.fixture(scope="module")
def net(card):
    backend = open_backend("onnxruntime", card.folder)
    yield backend
    backend.close()


def _pipeline(card, net, decoder):
    score = ScoreStage(net, card, batch_size=4)
    aggregate = Aggregate(how="max", decision=card.decision(), model=card.name, backend=net.name)
    return Pipeline(decoder, CentreFaces(card.side), score, aggregate, workers=2)


def test_replaced_decoder_and_face_stage_run_the_same_path(card, net):
    result = _pipeline(card, net, GreyFrames(3)).run("synthetic://three")
    assert result.status == "ok" and result.frames_sampled == 3 and len(result.faces) == 6
    assert [f.frame_index for f in result.faces] == [10, 10, 20, 20, 30, 30]
    assert [f.timestamp for f in result.faces] == [2.0, 2.0, 4.0, 4.0, 6.0, 6.0]
    assert result.faces[1].box == (50.0, 20.0, 110.0, 80.0)
    # max aggregation over frames, each frame its most suspicious face
    assert result.score == pytest.approx(max(frame_scores(result.faces)))
    assert result.label == ("fake" if result.score >= card.threshold else "real")
    assert {"decode", "detect", "infer"} <= set(result.timings)


def test_a_failing_stage_costs_its_input_only(card, net):
    pipe = _pipeline(card, net, GreyFrames(3, fail_at=1))
    results = list(pipe.run_many(["a", "b", "c"]))
    assert [r.source for r in results] == ["a", "b", "c"]  # input order
    assert all(r.status == "error" and r.error_type == "CorruptMediaError" for r in results)
    ok = list(_pipeline(card, net, GreyFrames(2)).run_many(["x", "y"]))
    assert [r.status for r in ok] == ["ok", "ok"]


def test_no_face_is_a_result(card, net):
    pipe = Pipeline(GreyFrames(2), lambda image: [], ScoreStage(net, card, batch_size=4),
                    Aggregate(how="mean", decision=Decision("custom", 0.5), model=card.name, backend=net.name))
    r = pipe.run("blank")
    assert r.status == "no_face" and r.frames_sampled == 2 and r.score is None


def test_frame_scores_take_each_frames_worst_face():
    faces = [FaceScore(0, 0.0, (0, 0, 1, 1), 0.2), FaceScore(0, 0.0, (0, 0, 1, 1), 0.9),
             FaceScore(5, 1.0, (0, 0, 1, 1), 0.4)]
    assert frame_scores(faces) == [0.9, 0.4]


def test_detector_is_the_standard_pipeline(card):
    sample = card.folder.parent / "samples" / "astronaut_real.mp4"
    options = ScoringOptions(frames=3, backend="onnxruntime")
    pipe = build_pipeline(card, options)
    try:
        assert isinstance(pipe.decode, MediaDecoder)
        direct = pipe.run(sample)
    finally:
        pipe.score.net.close()
    with pycrl.Detector(options=options) as det:
        assert det.card == card and det.options == options
        via = det.score_video(sample)
    assert via.status == direct.status == "ok"
    assert via.score == pytest.approx(direct.score, abs=1e-6)
    assert [f.frame_index for f in via.faces] == [f.frame_index for f in direct.faces]


def test_inputs_in_flight_are_bounded_by_frames(card):
    def window(**kw):
        pipe = build_pipeline(card, ScoringOptions(backend="onnxruntime", **kw))
        pipe.score.net.close()
        return pipe.window

    assert window() == 4  # 2 x 2 workers: 4 x 32 frames fit the default 256
    assert window(frames=128) == 2 and window(frames=4096) == 1  # a long sampling holds one input ahead
    assert window(frames=8, workers=16, prefetch_frames=64) == 8
