"""Exposing the Deception's losses (docs/methods.md §4.2, as the authors' ``mi_loss`` computes them).

With z-head logits ``cls``, all-features logits ``cls_all`` = p(y|F) and leave-one-out
logits ``cls_local[:, i]`` = p(y|f_-i) (pycrl/models/exposing.py), temperature T and
KL(p||q) averaged over every element (``torch.nn.KLDivLoss()``'s default reduction):

  ce   CE(cls) [+ CE(cls_all) with GIL] [+ sum_i CE(cls_local_i) with LIL]
  gil  KL( softmax(cls/T) || softmax(cls_all/T) ), cls_all detached: z distils from F
  lil  exp( -sum_i KL( softmax(cls_local_i/T) || softmax(cls_all/T) ) ), cls_all detached:
       minimising it makes removing any one f_i change the prediction, so every local
       feature must carry label information of its own

Balancing the active terms: ``auto`` (Kendall uncertainty weighting,
``sum_k 0.5/sigma_k^2 L_k + log(1 + sigma_k^2)``, sigma learnable, initialised to 1) or
``hyper`` (fixed ``scales`` for ce, gil, lil). Mixup (``prepare_batch``) mixes the inputs
and every term as ``lam L(y_a) + (1 - lam) L(y_b)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .base import Loss, split_batch
from .registry import register_loss

BALANCE_MODES = ("auto", "hyper")
TERMS = ("ce", "gil", "lil")
# Batch entries prepare_batch adds for mixup: the partner labels and the mixing weight.
LABEL_B, MIX_LAMBDA = "label_b", "mix_lambda"


def tempered_kl(logits_p: torch.Tensor, logits_q: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(p/T) || softmax(q/T)), mean over all B*C elements; gradients reach p only."""
    log_p = F.log_softmax(logits_p.float() / temperature, dim=1)
    log_q = F.log_softmax(logits_q.detach().float() / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).mean()


def mixed_ce(logits: torch.Tensor, labels: torch.Tensor, mix: tuple | None) -> torch.Tensor:
    """CE(logits, y), or lam CE(y_a) + (1 - lam) CE(y_b) under mixup (``mix`` = (y_b, lam))."""
    logits = logits.float()
    if mix is None:
        return F.cross_entropy(logits, labels.long())
    labels_b, lam = mix
    return lam * F.cross_entropy(logits, labels.long()) + (1.0 - lam) * F.cross_entropy(logits, labels_b.long())


def uncertainty_weighted(losses: Sequence[torch.Tensor], sigma: torch.Tensor) -> torch.Tensor:
    """Kendall et al.'s weighting with sigma_k per loss: sum_k 0.5/sigma_k^2 L_k + log(1 + sigma_k^2)."""
    total = sigma.new_zeros(())
    for s, loss in zip(sigma, losses):
        total = total + 0.5 / s ** 2 * loss + torch.log1p(s ** 2)
    return total


@register_loss("exposing")
class ExposingLoss(Loss):
    """Exposing-the-Deception loss on a training-mode ``exposing`` output.

    Args:
        global_loss: the Global Information Loss (and the CE of the all-features head).
        local_loss: the Local Information Loss (and the CE of the leave-one-out heads).
        temperature: T of both KL terms (paper: 1.5).
        balance: ``auto`` (learnable uncertainty weights) or ``hyper`` (fixed ``scales``).
        scales: weights of (ce, gil, lil) for ``hyper`` (paper: 1, 2, 10). Matched by
            name, so switching a term off does not shift the others' weights.
        mixup: mix training inputs in ``prepare_batch``; mixup_alpha: lam ~ Beta(a, a).
    """

    def __init__(self, global_loss: bool = True, local_loss: bool = True, temperature: float = 1.5,
                 balance: str = "auto", scales: Sequence[float] = (1.0, 2.0, 10.0), mixup: bool = True,
                 mixup_alpha: float = 0.5):
        if balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, got {balance!r}")
        if len(scales) != len(TERMS):
            raise ValueError(f"scales: one weight for each of {TERMS}, got {list(scales)}")
        if temperature <= 0 or mixup_alpha <= 0:
            raise ValueError("temperature and mixup_alpha must be positive")
        self.global_loss, self.local_loss = bool(global_loss), bool(local_loss)
        self.temperature, self.balance = float(temperature), balance
        self.scales = [float(s) for s in scales]
        self.mixup, self.mixup_alpha = bool(mixup), float(mixup_alpha)
        self.active = [t for t, on in zip(TERMS, (True, self.global_loss, self.local_loss)) if on]
        # One sigma per active term, as the authors' AutomaticWeightedLoss(loss_num).
        self.sigma = torch.nn.Parameter(torch.ones(len(self.active))) if balance == "auto" else None
        self._config = {k: getattr(self, k) for k in (
            "global_loss", "local_loss", "temperature", "balance", "scales", "mixup", "mixup_alpha")}

    # -- loss-owned parameters (the trainer optimises and checkpoints them)

    def attach(self, model: torch.nn.Module) -> None:
        param = next(model.parameters(), None)
        if self.sigma is not None and param is not None:
            self.sigma.data = self.sigma.data.to(param.device)  # same Parameter: safe before the optimiser

    def parameters(self) -> list[torch.nn.Parameter]:
        return [] if self.sigma is None else [self.sigma]

    def state_dict(self) -> dict:
        return {} if self.sigma is None else {"sigma": self.sigma.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.state_dict()):
            raise ValueError(f"ExposingLoss state: expected keys {sorted(self.state_dict())}, got {sorted(state)}")
        if self.sigma is not None:
            with torch.no_grad():
                self.sigma.copy_(state["sigma"])

    # -- mixup

    def prepare_batch(self, batch: dict) -> dict:
        """Mix each image with a random partner: x = lam x + (1 - lam) x[perm]. Draws from
        torch's global RNG (seeded by the trainer, saved in its checkpoints), so seeded runs
        and resumed runs repeat exactly."""
        if not self.mixup:
            return batch
        images, labels = batch["image"], batch["label"]
        lam = float(torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample())
        perm = torch.randperm(labels.shape[0]).to(labels.device)
        return {**batch, "image": lam * images + (1.0 - lam) * images[perm], LABEL_B: labels[perm],
                MIX_LAMBDA: lam}

    # -- the terms

    def __call__(self, out: Mapping, batch) -> dict[str, torch.Tensor]:
        labels, _ = split_batch(batch)
        device = out["cls"].device
        mix = None
        if isinstance(batch, Mapping) and MIX_LAMBDA in batch:
            mix = (torch.as_tensor(batch[LABEL_B]).to(device), float(batch[MIX_LAMBDA]))
        return self.forward(out, labels.to(device), None, mix)

    def forward(self, out: Mapping, labels: torch.Tensor, images=None, mix: tuple | None = None) -> dict:
        missing = [k for k in ("cls_all", "cls_local") if k not in out]
        if (self.global_loss or self.local_loss) and missing:
            raise KeyError(f"the model output lacks {missing}: the exposing loss needs the "
                           "training-mode outputs of the 'exposing' model")
        # GIL and LIL do not depend on the labels: their mixup mixture equals the term itself.
        terms = {"ce": mixed_ce(out["cls"], labels, mix)}
        if self.global_loss:
            terms["ce"] = terms["ce"] + mixed_ce(out["cls_all"], labels, mix)
            terms["gil"] = tempered_kl(out["cls"], out["cls_all"], self.temperature)
        if self.local_loss:
            local = out["cls_local"]
            kl = sum(tempered_kl(local[:, i], out["cls_all"], self.temperature) for i in range(local.shape[1]))
            assert isinstance(kl, torch.Tensor)  # the exposing model has at least one local block
            terms["ce"] = terms["ce"] + sum(mixed_ce(local[:, i], labels, mix) for i in range(local.shape[1]))
            terms["lil"] = torch.exp(-kl)
        losses = [terms[t] for t in self.active]
        if self.sigma is not None:
            overall = uncertainty_weighted(losses, self.sigma)
        else:
            weighted = sum(self.scales[TERMS.index(t)] * terms[t] for t in self.active)
            assert isinstance(weighted, torch.Tensor)  # "ce" is always active
            overall = weighted
        return {"overall": overall, **terms}
