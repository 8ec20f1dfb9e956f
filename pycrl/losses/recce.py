"""RECCE's losses (Cao et al., CVPR 2022) and plain cross-entropy.

Recipes (docs/methods.md §2.4, §2.6):
  paper          flooded BCE/CE (b = 0.04) + 0.1 * reconstruction L1 on reals
                 + 0.1 * margin metric loss summed over the 3 metric layers;
  deepfakebench  cross-entropy only: DeepfakeBench computes the other terms but never adds them.
Any weight can be overridden; a weight of 0 skips computing its term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .base import Loss, real_mask
from .registry import register_loss
from .terms import classification, margin_metric, reconstruction

RECCE_RECIPES: dict[str, dict[str, float]] = {
    "paper": {"flood": 0.04, "recon_weight": 0.1, "metric_weight": 0.1},
    "deepfakebench": {"flood": 0.0, "recon_weight": 0.0, "metric_weight": 0.0},
}


@register_loss("ce")
class CrossEntropyLoss(Loss):
    """Cross-entropy (2 logits) or BCE (1 logit) on ``out['cls']``, optionally flooded.
    The DeepfakeBench loss of every detector it ships (``cross_entropy``)."""

    def __init__(self, flood: float = 0.0):
        self.flood = float(flood)
        self._config = {"flood": self.flood}

    def forward(self, out: Mapping, labels: torch.Tensor, images) -> dict[str, torch.Tensor]:
        cls = classification(out["cls"], labels, self.flood)
        return {"overall": cls, "cls": cls}


@register_loss("recce")
class RecceLoss(Loss):
    """RECCE's loss on a detector output with ``cls``, ``recon_views`` and ``metric_feats``.

    Args:
        recipe: ``paper`` or ``deepfakebench``: the defaults of the next three.
        flood: flooding level b of the classification loss (0 = none).
        recon_weight: lambda_1 of the L1 reconstruction loss over real samples.
        metric_weight: lambda_2 of the margin metric loss.
        margin: m in ``max(0, m - sim + diff)`` (RECCE: 1).
        layer_weights: per metric layer (default 1 each: RECCE sums them).
        align_corners: how reconstructions are upsampled to the input; True matches
            RECCE's ``F.interpolate(..., align_corners=True)``.
    """

    def __init__(self, recipe: str = "paper", flood: float | None = None, recon_weight: float | None = None,
                 metric_weight: float | None = None, margin: float = 1.0,
                 layer_weights: Sequence[float] | None = None, align_corners: bool = True):
        if recipe not in RECCE_RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECCE_RECIPES)}, got {recipe!r}")
        base = RECCE_RECIPES[recipe]
        self.flood = float(base["flood"] if flood is None else flood)
        self.recon_weight = float(base["recon_weight"] if recon_weight is None else recon_weight)
        self.metric_weight = float(base["metric_weight"] if metric_weight is None else metric_weight)
        self.margin = float(margin)
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]
        self.align_corners = bool(align_corners)
        self.needs_image = self.recon_weight != 0
        self._config = {"recipe": recipe, "flood": self.flood, "recon_weight": self.recon_weight,
                        "metric_weight": self.metric_weight, "margin": self.margin,
                        "layer_weights": self.layer_weights, "align_corners": self.align_corners}

    def forward(self, out: Mapping, labels: torch.Tensor, images) -> dict[str, torch.Tensor]:
        terms = {"cls": classification(out["cls"], labels, self.flood)}
        overall = terms["cls"]
        is_real = real_mask(labels, torch.float32)
        if self.recon_weight:
            terms["recon"] = reconstruction(images, out["recon_views"], is_real, None, self.align_corners)
            overall = overall + self.recon_weight * terms["recon"]
        if self.metric_weight:
            terms["metric"] = margin_metric(out["metric_feats"], is_real, self.margin, self.layer_weights)
            overall = overall + self.metric_weight * terms["metric"]
        return {"overall": overall, **terms}
