"""The CAE loss (Yan, Li, Lu, arXiv 2211.13424; docs/methods.md §6):

    L = CE(cls, y) + lambda * mean (x_hat - x)^2        (``recon_loss="l1"``: mean |x_hat - x|)

The reconstruction term covers every image, real and fake alike: the decoder is an
unsupervised regulariser of the shared latent, unlike RECCE/CRL which reconstruct reals
only. lambda = 1 and MSE are the design's starting point [inferred]; L1 is the variant
worth trying.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .base import Loss
from .registry import register_loss
from .terms import classification

RECON_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def full_reconstruction(recon: torch.Tensor, images: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean per-element error between the reconstruction and the (detached) input over the
    whole batch, in float32 whatever autocast produced."""
    if recon.shape != images.shape:
        raise ValueError(f"reconstruction {tuple(recon.shape)} does not match the input "
                         f"{tuple(images.shape)}: the decoder must output the input size")
    return RECON_LOSSES[kind](recon.float(), images.detach().float())


@register_loss("cae")
class CAELoss(Loss):
    """``overall = cls + recon_weight * recon`` on a detector output with ``cls`` and ``recon``.

    Args:
        recon_weight: lambda; 0 trains the classifier alone (and needs no ``recon``).
        recon_loss: "mse" (the design) or "l1".
        flood: flooding level of the classification term (0 = plain CE / BCE).
    """

    def __init__(self, recon_weight: float = 1.0, recon_loss: str = "mse", flood: float = 0.0):
        if recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {sorted(RECON_LOSSES)}, got {recon_loss!r}")
        self.recon_weight = float(recon_weight)
        self.recon_loss = recon_loss
        self.flood = float(flood)
        self.needs_image = self.recon_weight != 0
        self._config = {"recon_weight": self.recon_weight, "recon_loss": recon_loss, "flood": self.flood}

    def forward(self, out: Mapping, labels: torch.Tensor, images) -> dict[str, torch.Tensor]:
        terms = {"cls": classification(out["cls"], labels, self.flood)}
        overall = terms["cls"]
        if self.recon_weight:
            if "recon" not in out:
                raise KeyError("the output has no 'recon': CAE reconstructs in training mode only "
                               "(call model.train() before computing the training loss)")
            terms["recon"] = full_reconstruction(out["recon"], images, self.recon_loss)
            overall = overall + self.recon_weight * terms["recon"]
        return {"overall": overall, **terms}
