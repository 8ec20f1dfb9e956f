"""CRL's loss (docs/methods.md §1.3, inferred from RECCE; every choice is a flag):

  L = CE + lambda_1 * L_mvr + lambda_2 * L_comp

L_mvr: multi-view reconstruction loss over real samples, ``sum_v w_v * mean_real L1`` over
the model's ``recon_views`` (kernel A). L_comp: the real-sample compactness loss (kernel B):
  pairwise      ``sum_layers (1 - sim)``: pull every pair of real embeddings together;
  centroid      ``mean_real ||f_i - c||^2`` of normalised embeddings to an EMA real centre c;
  recce_margin  RECCE's ``sum_layers max(0, m - sim + diff)``.
pairwise and recce_margin use the 3 ``metric_feats`` layers; centroid uses one feature
(``centre_feature``, default the pooled embedding ``feat``).

The centre lives in the model as the buffer ``real_centre`` (so checkpoints and model
folders carry it); :meth:`CRLLoss.attach` tells the loss which model, and a model without
the buffer gets one on the first call. The centre is updated under no_grad after the term
is computed, only while the model is in training mode with gradients enabled:
``c <- m * c + (1 - m) * mean_real(f_hat)``. A zero centre means "not yet seen a real": it is
set to the first batch's real mean and that batch's centroid term is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .base import Loss, real_mask
from .registry import register_loss
from .terms import (
    centroid_pull,
    classification,
    margin_metric,
    pairwise_pull,
    reconstruction,
)

COMPACT_MODES = ("pairwise", "centroid", "recce_margin")
CENTRE_BUFFER = "real_centre"


def pick_feature(out: Mapping, spec: str) -> torch.Tensor:
    """``feat`` -> out['feat']; ``metric_feats.2`` -> out['metric_feats'][2]."""
    key, _, index = spec.partition(".")
    if key not in out:
        raise KeyError(f"the model output has no {key!r} (keys: {sorted(out)})")
    value = out[key]
    return value[int(index)] if index else value


@register_loss("crl")
class CRLLoss(Loss):
    """Compact Reconstruction Learning loss.

    Args:
        flood: flooding level of the CE term (0 = plain CE).
        recon_weight: lambda_1 (RECCE: 0.1).
        view_weights: w_v per reconstruction view (default 1 each).
        align_corners: upsampling of the views to the input (False, as the CRL model's difference map).
        compact_weight: lambda_2 (RECCE: 0.1).
        compact_mode: ``pairwise`` | ``centroid`` | ``recce_margin``.
        margin: m of ``recce_margin``.
        layer_weights: per metric layer, for ``pairwise`` and ``recce_margin``.
        centre_feature: output entry the centroid mode uses (``feat``, ``metric_feats.0``, ...).
        centre_momentum: EMA momentum m of the real centre.
    """

    needs_image = True

    def __init__(self, flood: float = 0.0, recon_weight: float = 0.1,
                 view_weights: Sequence[float] | None = None, align_corners: bool = False,
                 compact_weight: float = 0.1, compact_mode: str = "centroid", margin: float = 1.0,
                 layer_weights: Sequence[float] | None = None, centre_feature: str = "feat",
                 centre_momentum: float = 0.99):
        if compact_mode not in COMPACT_MODES:
            raise ValueError(f"compact_mode must be one of {COMPACT_MODES}, got {compact_mode!r}")
        if not 0.0 <= centre_momentum < 1.0:
            raise ValueError(f"centre_momentum must be in [0, 1), got {centre_momentum}")
        self.flood = float(flood)
        self.recon_weight = float(recon_weight)
        self.view_weights = None if view_weights is None else [float(w) for w in view_weights]
        self.align_corners = bool(align_corners)
        self.compact_weight = float(compact_weight)
        self.compact_mode = compact_mode
        self.margin = float(margin)
        self.layer_weights = None if layer_weights is None else [float(w) for w in layer_weights]
        self.centre_feature = centre_feature
        self.centre_momentum = float(centre_momentum)
        self._model: torch.nn.Module | None = None
        self._config = {k: getattr(self, k) for k in (
            "flood", "recon_weight", "view_weights", "align_corners", "compact_weight", "compact_mode",
            "margin", "layer_weights", "centre_feature", "centre_momentum")}

    def attach(self, model: torch.nn.Module) -> None:
        self._model = model

    # -- the real centre

    def centre(self, dim: int, device: torch.device) -> torch.Tensor:
        """The model's ``real_centre`` buffer, registered (zeros) when the model lacks it."""
        if self._model is None:
            raise RuntimeError("compact_mode 'centroid' keeps its centre in the model: call loss.attach(model) first")
        buf = getattr(self._model, CENTRE_BUFFER, None)
        if buf is None or buf.numel() == 0:
            self._model.register_buffer(CENTRE_BUFFER, torch.zeros(dim, device=device))
            buf = getattr(self._model, CENTRE_BUFFER)
        if buf.shape != (dim,):
            raise ValueError(f"model.{CENTRE_BUFFER} has shape {tuple(buf.shape)} but {self.centre_feature!r} "
                             f"has {dim} channels; pick a matching centre_feature")
        return buf

    @torch.no_grad()
    def update_centre(self, centre: torch.Tensor, normed: torch.Tensor, is_real: torch.Tensor) -> None:
        n = is_real.sum()
        if n == 0:
            return
        mean = (normed * is_real[:, None]).sum(0) / n
        if centre.any():
            centre.mul_(self.centre_momentum).add_(mean.to(centre.dtype), alpha=1.0 - self.centre_momentum)
        else:
            centre.copy_(mean)

    # -- the loss

    def compactness(self, out: Mapping, is_real: torch.Tensor) -> torch.Tensor:
        if self.compact_mode == "recce_margin":
            return margin_metric(out["metric_feats"], is_real, self.margin, self.layer_weights)
        if self.compact_mode == "pairwise":
            return pairwise_pull(out["metric_feats"], is_real, self.layer_weights)
        feat = pick_feature(out, self.centre_feature)
        centre = self.centre(feat.shape[1], feat.device)
        term, normed = centroid_pull(feat, is_real, centre)
        assert self._model is not None  # self.centre() raised otherwise
        if self._model.training and torch.is_grad_enabled():
            self.update_centre(centre, normed, is_real)
        return term

    def forward(self, out: Mapping, labels: torch.Tensor, images) -> dict[str, torch.Tensor]:
        terms = {"cls": classification(out["cls"], labels, self.flood)}
        overall = terms["cls"]
        is_real = real_mask(labels, torch.float32)
        if self.recon_weight:
            terms["recon"] = reconstruction(images, out["recon_views"], is_real, self.view_weights,
                                            self.align_corners)
            overall = overall + self.recon_weight * terms["recon"]
        if self.compact_weight:
            terms["compact"] = self.compactness(out, is_real)
            overall = overall + self.compact_weight * terms["compact"]
        return {"overall": overall, **terms}
