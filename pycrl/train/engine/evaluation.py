"""Scoring a dataset with a model, the test metrics, and the decision threshold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pycrl.model_card import ModelCard
from pycrl.train.engine.runtime import autocast
from pycrl.train.metrics import accuracy, compute_metrics, eer_threshold, threshold_at_fpr

# Metrics where lower is better; every other metric selects by its maximum.
LOWER_IS_BETTER = frozenset({"eer", "loss"})


@dataclass
class Predictions:
    labels: np.ndarray  # (N,) 0 = real, 1 = fake
    probs: np.ndarray  # (N,) probability of fake
    video_ids: list[str]


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device, amp_dtype=None, progress=None) -> Predictions:
    """Fake probabilities for every sample of ``loader``, in order (the model is put in eval mode)."""
    was_training = model.training
    model.eval()
    labels, probs, vids = [], [], []
    try:
        for batch in loader:
            with autocast(device, amp_dtype):
                out = model(batch["image"].to(device, non_blocking=True))
            probs.append(out["prob"].float().cpu().numpy())
            labels.append(batch["label"].numpy())
            vids.extend(batch["video_id"])
            if progress is not None:
                progress.update(1)
    finally:
        model.train(was_training)
    return Predictions(np.concatenate(labels), np.concatenate(probs), vids)


def metrics(pred: Predictions, threshold: float | None = None) -> dict:
    """DeepfakeBench's metrics (auc, eer, ap, acc at 0.5, video_auc, counts), plus the
    accuracy at ``threshold`` when one is given."""
    out = compute_metrics(pred.labels, pred.probs, pred.video_ids)
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["acc_at_threshold"] = accuracy(pred.labels, pred.probs, threshold)
    return out


def choose_threshold(pred: Predictions, cfg: Mapping) -> dict:
    """The decision threshold from validation predictions: at the EER point (default), at a
    target false-positive rate, or fixed. Falls back to 0.5 when undefined (one class)."""
    mode = cfg["mode"]
    if mode == "fixed":
        value = float(cfg["value"])
    elif mode == "eer":
        value = eer_threshold(pred.labels, pred.probs)[1]
    elif mode == "fpr":
        value = threshold_at_fpr(pred.labels, pred.probs, float(cfg["target_fpr"]))
    else:
        raise ValueError(f"threshold.mode must be eer, fpr or fixed, got {mode!r}")
    out = {"mode": mode, "chosen_on": "val"}
    if mode == "fpr":
        out["target_fpr"] = float(cfg["target_fpr"])
    if not math.isfinite(value):
        # roc_curve's first threshold is +inf ("call nothing fake"); keep the JSON finite
        out["note"] = f"the {mode} point is undefined or calls nothing fake here; fell back"
        value = 0.5 if math.isnan(value) else float(np.nextafter(1.0, 2.0))
    out["value"] = float(value)
    return out


def better(metric: str, new: float, best: float | None) -> bool:
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False
    if best is None:
        return True
    return new < best if metric in LOWER_IS_BETTER else new > best


def evaluate_folder(model_dir: str, source: Mapping, *, split: str = "test", batch_size: int = 64,
                    workers: int = 2, device: str = "auto", threshold: float | None = None,
                    seed: int = 0, progress: bool = False, threads: int | None = None) -> dict:
    """Score one data source with a model folder; the folder's preprocessing (input size,
    mean/std) is used, and accuracy is also given at its decision threshold."""
    from pycrl import weights
    from pycrl.train.engine.data import build_dataset, describe, eval_loader
    from pycrl.train.engine.logs import progress_bar
    from pycrl.train.engine.runtime import pick_device

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)  # on-the-fly self-blended fakes draw from it: same fakes every run
    dev = pick_device(device)
    card = ModelCard.read(model_dir)
    model = weights.load(card.folder, device=dev)
    data_cfg = {"resolution": card.side, "mean": list(card.mean), "std": list(card.std),
                "eval_batch_size": batch_size, "workers": workers, split: dict(source)}
    ds = build_dataset(data_cfg, split, False, seed)
    loader = eval_loader(ds, data_cfg, seed)
    bar = progress_bar(len(loader), 0, progress, "evaluate")
    try:
        pred = predict(model, loader, dev, progress=bar)
    finally:
        bar.close()
    thr = card.threshold if threshold is None else float(threshold)
    return {"model": str(model_dir), "architecture": card.architecture, "data": describe(ds, dict(source)),
            "metrics": metrics(pred, thr), "threshold": card.doc.get("threshold")}
