"""Selective layer masking from gradient bias-variance statistics (MASM/FMSD,
docs/methods.md §5.2, proposed in §5.4).

For every element of a layer's trainable tensors the mask keeps exponential
moving averages of the gradient (m) and of its square (v), bias-corrected as
Adam does. Per layer, bias = sum m², variance = sum (v - m²) and the
signal-to-noise ratio is bias / variance: a layer whose gradient points the
same way step after step (high SNR) is one the task consistently wants to
change; one whose gradient is mostly noise is left alone. Every ``every``
steps after a ``warmup`` the mask keeps the ``top_k`` layers by SNR (or those
above ``threshold``); the others get ``grad = None`` so the optimiser skips
them. Statistics keep being gathered for masked layers, so they can return.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

MASK_MODES = ("top_k", "threshold", "off")


class GradientSNRMask(nn.Module):
    """Layer mask over ``len(sizes)`` layers holding ``sizes[i]`` trainable elements.

    Args:
        names: one name per layer (for the logs).
        sizes: trainable elements per layer (their gradients are concatenated).
        mode: ``top_k`` | ``threshold`` | ``off`` (every layer always updates).
        top_k: layers kept: a count (>= 1) or a fraction of the layers (< 1).
        threshold: minimum SNR for mode ``threshold`` (the best layer always stays on).
        every: steps between two recomputations of the mask.
        warmup: steps of statistics gathered before the first mask (all layers update).
        momentum: EMA momentum of the gradient statistics.
    """

    grad_mean: torch.Tensor
    grad_sq: torch.Tensor
    seen: torch.Tensor
    active: torch.Tensor
    snr: torch.Tensor

    def __init__(self, names: Sequence[str], sizes: Sequence[int], mode: str = "top_k",
                 top_k: float = 0.5, threshold: float = 1.0, every: int = 20, warmup: int = 20,
                 momentum: float = 0.9):
        super().__init__()
        if mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
        if len(names) != len(sizes) or not names:
            raise ValueError("the mask needs one name per layer and at least one layer")
        if every < 1 or warmup < 1 or not 0.0 <= momentum < 1.0:
            raise ValueError(f"mask every/warmup must be >= 1 and momentum in [0, 1), got "
                             f"{every}/{warmup}/{momentum}")
        self.names, self.sizes = list(names), [int(s) for s in sizes]
        self.mode, self.top_k, self.threshold = mode, float(top_k), float(threshold)
        self.every, self.warmup, self.momentum = int(every), int(warmup), float(momentum)
        total = sum(self.sizes) if mode != "off" else 0
        self.register_buffer("grad_mean", torch.zeros(total))
        self.register_buffer("grad_sq", torch.zeros(total))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("active", torch.ones(len(names), dtype=torch.bool))
        self.register_buffer("snr", torch.zeros(len(names)))

    def keep_count(self) -> int:
        n = len(self.names)
        k = self.top_k * n if self.top_k < 1 else self.top_k
        return max(1, min(n, int(math.ceil(k))))

    @torch.no_grad()
    def observe(self, grads: Sequence[Optional[torch.Tensor]]) -> None:
        """Fold one step's gradients (None = zero) into the EMAs; one entry per layer.
        A step with non-finite gradients (an fp16 overflow the grad scaler will skip)
        is left out rather than poisoning the averages."""
        flat = torch.cat([torch.zeros(n, device=self.grad_mean.device) if g is None else g.detach().flatten().float()
                          for g, n in zip(grads, self.sizes)])
        if not bool(torch.isfinite(flat).all()):
            return
        beta = self.momentum
        self.grad_mean.mul_(beta).add_(flat, alpha=1 - beta)
        self.grad_sq.mul_(beta).addcmul_(flat, flat, value=1 - beta)
        self.seen += 1

    @torch.no_grad()
    def layer_snr(self) -> torch.Tensor:
        """(L,) sum of squared mean gradient over sum of gradient variance, per layer."""
        correction = 1.0 - self.momentum ** max(int(self.seen), 1)
        mean = self.grad_mean / correction
        bias = mean.pow(2)
        var = (self.grad_sq / correction - bias).clamp_min(0)
        bias_l = torch.stack([b.sum() for b in torch.split(bias, self.sizes)])
        var_l = torch.stack([v.sum() for v in torch.split(var, self.sizes)])
        return bias_l / var_l.clamp_min(1e-30)

    def due(self, step: int) -> bool:
        return step >= self.warmup and (step - self.warmup) % self.every == 0

    @torch.no_grad()
    def select(self, snr: torch.Tensor) -> torch.Tensor:
        if self.mode == "threshold":
            on = snr >= self.threshold
            on[torch.argmax(snr)] = True
            return on
        on = torch.zeros_like(self.active)
        on[torch.topk(snr, self.keep_count()).indices] = True
        return on

    def update(self, step: int, grads: Sequence[Optional[torch.Tensor]]) -> Dict[str, float]:
        """Observe this step's gradients, recompute the mask when due; returns the log."""
        if self.mode == "off":
            return {}
        self.observe(grads)
        self.snr.copy_(self.layer_snr())
        if self.due(step):
            self.active.copy_(self.select(self.snr))
        return self.log()

    def log(self) -> Dict[str, float]:
        """How many layers are on, and each layer's SNR and on/off state."""
        out: Dict[str, float] = {"mask/active": float(self.active.sum())}
        for name, snr, on in zip(self.names, self.snr.tolist(), self.active.tolist()):
            out[f"mask/snr/{name}"] = float(snr)
            out[f"mask/on/{name}"] = float(on)
        return out

    def masked(self) -> List[int]:
        return [i for i, on in enumerate(self.active.tolist()) if not on]
