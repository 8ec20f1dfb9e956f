"""MASM's loss (docs/methods.md §5.4, inferred; Effort's regularisers with K groups):

  L = CE + alpha * L_orth + beta * L_spec

L_orth = mean over decomposed layers of ``sum_{k≠l} ||U_kᵀU_l||² + ||V_kᵀV_l||²`` (between
artifact subspaces) plus, with ``orth_within``, ``sum_k ||U_kᵀU_k - I||² + ||V_kᵀV_k - I||²``
(Effort's within-group term, squared here). L_spec = mean over layers of Effort's keep-SV
term ``| ||W||²_F - ||W0||²_F |`` (``spec_mode: fro``) or the squared distance between the
learned and pretrained tail spectra (``sv``). The terms come from the model
(:meth:`pycrl.models.masm.MASM.regularisers`): call :meth:`MASMLoss.attach` first.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import Loss
from .registry import register_loss
from .terms import classification


@register_loss("masm")
class MASMLoss(Loss):
    """CE + alpha * L_orth + beta * L_spec.

    Args:
        orth_weight: alpha (0 skips the term and its cost).
        spec_weight: beta (0 skips the term).
        orth_within: add the within-group term to L_orth.
        spec_mode: ``fro`` | ``sv`` (see the module docstring).
        flood: flooding level of the CE term (0 = plain CE).
    """

    def __init__(self, orth_weight: float = 0.1, spec_weight: float = 0.1, orth_within: bool = True,
                 spec_mode: str = "fro", flood: float = 0.0):
        self.orth_weight = float(orth_weight)
        self.spec_weight = float(spec_weight)
        self.orth_within = bool(orth_within)
        self.spec_mode = spec_mode
        self.flood = float(flood)
        self._model: torch.nn.Module | None = None
        self._config = {k: getattr(self, k) for k in
                        ("orth_weight", "spec_weight", "orth_within", "spec_mode", "flood")}

    def attach(self, model: torch.nn.Module) -> None:
        if not hasattr(model, "regularisers"):
            raise TypeError(f"the masm loss reads subspace regularisers from a MASM model, "
                            f"got {type(model).__name__}")
        self._model = model

    def regularisers(self) -> dict[str, torch.Tensor]:
        if self._model is None:
            raise RuntimeError("the masm loss reads its regularisers from the model: call loss.attach(model) first")
        # a method (attach checked it), but torch types Module.__getattr__ as Tensor | Module
        return self._model.regularisers(self.spec_mode)  # type: ignore[operator]

    def forward(self, out: Mapping, labels: torch.Tensor, images) -> dict[str, torch.Tensor]:
        terms = {"cls": classification(out["cls"], labels, self.flood)}
        overall = terms["cls"]
        if self.orth_weight or self.spec_weight:
            reg = self.regularisers()
            terms["orth"] = reg["orth_between"] + (reg["orth_within"] if self.orth_within else 0.0)
            terms["spec"] = reg["spec"]
            overall = overall + self.orth_weight * terms["orth"] + self.spec_weight * terms["spec"]
        return {"overall": overall, **terms}
