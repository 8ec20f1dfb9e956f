"""DeepfakeBench's test metrics (training/metrics/utils.py), computed with scikit-learn.

Scores are probabilities of *fake*; label 1 = fake is the positive class.

- frame AUC (the benchmark headline), AP, ACC at 0.5 (``prob > 0.5`` is fake);
- EER as DeepfakeBench reports it: the FPR at the ROC point where |FNR - FPR| is smallest;
- video AUC: mean frame probability per video. DeepfakeBench groups by the frame's parent
  folder name only, which merges equally named videos of different methods; here frames are
  grouped by the ``video_id`` the datasets give (``<label_key>_<video>``). To reproduce the
  benchmark's grouping exactly, pass :func:`deepfakebench_video_key` of each frame path.

With a single class present AUC, AP, EER and thresholds are undefined: they come back as
nan with a :class:`MetricWarning`, never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


class MetricWarning(UserWarning):
    """A metric is undefined for these labels (e.g. a single class) and was returned as nan."""


def _arrays(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length: {y.size} vs {p.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, p


def _two_classes(y: np.ndarray, what: str) -> bool:
    if np.unique(y).size == 2:
        return True
    present = "no samples" if y.size == 0 else f"only label {int(y[0])}"
    warnings.warn(f"{what} is undefined with {present}; returning nan", MetricWarning, stacklevel=3)
    return False


def frame_auc(labels, probs) -> float:
    y, p = _arrays(labels, probs)
    return float(roc_auc_score(y, p)) if _two_classes(y, "AUC") else float("nan")


def average_precision(labels, probs) -> float:
    y, p = _arrays(labels, probs)
    return float(average_precision_score(y, p)) if _two_classes(y, "AP") else float("nan")


def accuracy(labels, probs, threshold: float = 0.5) -> float:
    """Share of frames where ``prob > threshold`` matches the label (nan when empty)."""
    y, p = _arrays(labels, probs)
    return float(((p > threshold).astype(np.int64) == y).mean()) if y.size else float("nan")


def eer_threshold(labels, probs) -> tuple[float, float]:
    """(EER, threshold) at the ROC point where |FNR - FPR| is smallest; EER is that point's FPR."""
    y, p = _arrays(labels, probs)
    if not _two_classes(y, "EER"):
        return float("nan"), float("nan")
    # every ROC point, not sklearn's thinned curve: the balance point can sit on a straight stretch
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    i = int(np.nanargmin(np.abs((1.0 - tpr) - fpr)))
    return float(fpr[i]), _between_scores(p, float(thr[i]))


def equal_error_rate(labels, probs) -> float:
    return eer_threshold(labels, probs)[0]


def threshold_at_fpr(labels, probs, target_fpr: float) -> float:
    """The lowest threshold whose false-positive rate stays at or below ``target_fpr``.

    Frames with ``prob >= threshold`` are called fake; the lowest such threshold catches
    the most fakes within the FPR budget. A budget no score meets gives ``inf`` (call nothing fake).
    """
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(f"target_fpr must be within [0, 1], got {target_fpr}")
    y, p = _arrays(labels, probs)
    if not _two_classes(y, "threshold for a target FPR"):
        return float("nan")
    fpr, _, thr = roc_curve(y, p, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= target_fpr + 1e-12)
    return _between_scores(p, float(thr[ok[-1]]))  # fpr grows as the threshold falls; ok[0] is inf


def _between_scores(p: np.ndarray, thr: float) -> float:
    """Move a ROC threshold (a sample's own score) halfway down to the next lower score.

    The operating point is the same, but no sample sits on the threshold, so ``>`` and ``>=``
    agree and a re-run whose scores differ in the last float bits (another backend, a reloaded
    model) makes the same decisions.
    """
    if not math.isfinite(thr):
        return thr
    lower = p[p < thr]
    return float((thr + lower.max()) / 2) if lower.size else float(thr - 1e-6 * max(1.0, abs(thr)))


def video_scores(labels, probs, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(video labels, mean frame probability per video, video ids), ids in first-seen order."""
    y, p = _arrays(labels, probs)
    if len(video_ids) != y.size:
        raise ValueError(f"video_ids has {len(video_ids)} entries for {y.size} frames")
    order: dict[str, int] = {}
    codes = np.array([order.setdefault(str(v), len(order)) for v in video_ids], dtype=np.int64)
    n = len(order)
    counts = np.bincount(codes, minlength=n)
    mean_p = np.bincount(codes, weights=p, minlength=n) / np.maximum(counts, 1)
    mean_y = np.bincount(codes, weights=y, minlength=n) / np.maximum(counts, 1)
    mixed = [vid for vid, k in order.items() if 0.0 < mean_y[k] < 1.0]
    if mixed:
        raise ValueError(f"{len(mixed)} video id(s) hold both real and fake frames, e.g. {mixed[:3]}; "
                         f"video ids must be unique per video")
    return mean_y.astype(np.int64), mean_p, list(order)


def video_auc(labels, probs, video_ids: Sequence[str]) -> float:
    """AUC over videos, each scored by the mean probability of its frames."""
    vy, vp, _ = video_scores(labels, probs, video_ids)
    return float(roc_auc_score(vy, vp)) if _two_classes(vy, "video AUC") else float("nan")


def deepfakebench_video_key(frame_path: str) -> str:
    """DeepfakeBench's video key: the parent folder name of the frame (either separator)."""
    return PurePosixPath(str(frame_path).replace("\\", "/")).parent.name


def compute_metrics(labels, probs, video_ids: Sequence[str] | None = None, threshold: float = 0.5) -> dict:
    """All test metrics: ``auc, eer, ap, acc`` (+ ``video_auc`` with video ids) and counts."""
    y, p = _arrays(labels, probs)
    out = {"auc": frame_auc(y, p), "eer": equal_error_rate(y, p), "ap": average_precision(y, p),
           "acc": accuracy(y, p, threshold), "n_frames": int(y.size),
           "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
    if video_ids is not None:
        out["video_auc"] = video_auc(y, p, video_ids)
        out["n_videos"] = len(set(map(str, video_ids)))
    return out
