"""The end product of a run: a model folder (pycrl.weights.save) that says how to use it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from pycrl import weights
from pycrl.losses import CENTRE_BUFFER
from pycrl.train.engine.logs import json_safe


def model_meta(model: torch.nn.Module, cfg: Mapping, threshold: Mapping, training: Mapping) -> dict:
    data = cfg["data"]
    res = int(data["resolution"])
    meta = {"input_size": [3, res, res], "mean": [float(v) for v in data["mean"]],
            "std": [float(v) for v in data["std"]], "decision_threshold": float(threshold["value"]),
            "threshold": dict(threshold), "provenance": {"training": dict(training)}}
    centre = getattr(model, CENTRE_BUFFER, None)
    if isinstance(centre, torch.Tensor) and centre.numel():
        loss = cfg["loss"]
        meta["real_centre"] = {"buffer": CENTRE_BUFFER, "dim": int(centre.numel()),
                               "feature": loss.get("centre_feature", "feat"),
                               "initialised": bool(centre.any()),
                               "note": "EMA of the L2-normalised embeddings of real training samples"}
    return json_safe(meta)


def export_model(model: torch.nn.Module, folder: str | Path, cfg: Mapping, threshold: Mapping,
                 training: Mapping) -> Path:
    """Write ``model`` with its threshold, preprocessing, real centre and training provenance."""
    return weights.save(model, folder, model_meta(model, cfg, threshold, training))
