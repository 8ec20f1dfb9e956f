"""train.metrics against values worked out by hand."""

import math
import warnings

import numpy as np
import pytest

from pycrl.train.metrics import (MetricWarning, accuracy, average_precision, compute_metrics,
                           deepfakebench_video_key, eer_threshold, frame_auc, threshold_at_fpr,
                           video_auc, video_scores)

# Four frames. Ranked by score: 0.8 fake, 0.4 real, 0.35 fake, 0.1 real.
Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_frame_auc_counts_ordered_pairs():
    # fake/real pairs ranked right: 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert frame_auc(Y, P) == pytest.approx(0.75)


def test_average_precision_by_hand():
    # recall 0.5 at precision 1 (top score), recall 1 at precision 2/3
    assert average_precision(Y, P) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_accuracy_at_half_is_strict():
    # predictions 0,0,0,1 vs labels 0,0,1,1
    assert accuracy(Y, P) == pytest.approx(0.75)
    # a score of exactly 0.5 is called real, as DeepfakeBench's `prob > 0.5` does
    assert accuracy([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_eer_point_and_threshold():
    # at threshold 0.4: FPR = 1/2 (0.4 real), FNR = 1/2 (0.35 fake missed): they meet
    eer, thr = eer_threshold(Y, P)
    assert eer == pytest.approx(0.5)
    # halfway down to the next score: 0.4 is called fake, 0.35 real, and no frame sits on it
    assert thr == pytest.approx(0.375)


def test_eer_of_perfect_separation_is_zero():
    eer, thr = eer_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])
    assert eer == 0.0
    assert 0.2 < thr <= 0.7


def test_threshold_for_target_fpr():
    # no false positive allowed: only 0.8 may be called fake (halfway to the next score, 0.4)
    assert threshold_at_fpr(Y, P, 0.0) == pytest.approx(0.6)
    # half the reals may be flagged: everything down to 0.35 is called fake (FPR 1/2, TPR 1)
    assert threshold_at_fpr(Y, P, 0.5) == pytest.approx(0.225)
    # everything flagged: just below the lowest score
    assert 0.099 < threshold_at_fpr(Y, P, 1.0) < 0.1
    with pytest.raises(ValueError):
        threshold_at_fpr(Y, P, 1.5)


def test_threshold_for_fpr_honours_the_budget():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)

    def fpr(t):
        return ((p >= t) & (y == 0)).sum() / (y == 0).sum()

    for target in (0.01, 0.05, 0.2):
        t = threshold_at_fpr(y, p, target)
        assert fpr(t) <= target
        assert fpr(p[p < t].max()) > target  # the next lower score would break the budget
        assert not np.any(p == t)  # no frame sits on the threshold: > and >= decide alike


def test_decisions_survive_last_bit_noise():
    # a reloaded model or another backend moves scores by ~1e-7: accuracy at the chosen
    # threshold must not change with it
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1).astype(np.float32)
    noisy = p + rng.uniform(-1e-7, 1e-7, p.size).astype(np.float32)
    for t in (eer_threshold(y, p)[1], threshold_at_fpr(y, p, 0.05)):
        assert accuracy(y, p, t) == accuracy(y, noisy, t)


def test_video_auc_averages_frames_per_video():
    labels = [0, 0, 0, 1, 1, 1, 1]
    probs = [0.2, 0.4, 0.6, 0.5, 0.9, 0.45, 0.35]
    vids = ["r1", "r1", "r2", "f1", "f1", "f2", "f2"]
    # videos: r1 0.3, r2 0.6, f1 0.7, f2 0.4 -> pairs right: f1>r1, f1>r2, f2>r1 -> 3 of 4
    assert video_auc(labels, probs, vids) == pytest.approx(0.75)
    # frames: 8 of the 12 fake/real pairs are ordered right
    assert frame_auc(labels, probs) == pytest.approx(8 / 12)
    vy, vp, ids = video_scores(labels, probs, vids)
    assert ids == ["r1", "r2", "f1", "f2"]
    np.testing.assert_allclose(vp, [0.3, 0.6, 0.7, 0.4])
    np.testing.assert_array_equal(vy, [0, 0, 1, 1])


def test_video_with_both_labels_is_an_error():
    with pytest.raises(ValueError, match="both real and fake"):
        video_auc([0, 1, 1], [0.1, 0.9, 0.8], ["a", "a", "b"])


def test_single_class_gives_nan_with_warning():
    with pytest.warns(MetricWarning):
        assert math.isnan(frame_auc([1, 1, 1], [0.2, 0.7, 0.9]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        out = compute_metrics([0, 0], [0.2, 0.7], video_ids=["a", "b"])
    assert math.isnan(out["auc"]) and math.isnan(out["eer"]) and math.isnan(out["ap"])
    assert math.isnan(out["video_auc"])
    assert out["acc"] == pytest.approx(0.5)  # accuracy stays defined
    assert (out["n_real"], out["n_fake"], out["n_videos"]) == (2, 0, 2)


def test_compute_metrics_bundle():
    out = compute_metrics(Y, P, video_ids=["a", "b", "c", "d"])
    assert out["auc"] == pytest.approx(0.75)
    assert out["video_auc"] == pytest.approx(0.75)  # one frame per video: same as frames
    assert out["eer"] == pytest.approx(0.5)
    assert out["n_frames"] == 4


def test_input_checks():
    with pytest.raises(ValueError, match="length"):
        frame_auc([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        frame_auc([0, 2], [0.1, 0.2])


def test_deepfakebench_video_key_uses_parent_folder():
    assert deepfakebench_video_key(r"FaceForensics++\manipulated_sequences\Deepfakes\c23\frames\000_003\000.png") \
        == "000_003"
    assert deepfakebench_video_key("a/b/frames/017/031.png") == "017"
