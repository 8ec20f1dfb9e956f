"""Optimiser and learning-rate schedule from the ``optim`` and ``scheduler`` sections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

OPTIMISERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping) -> torch.optim.Optimizer:
    kind = str(cfg["type"]).lower()
    if kind not in OPTIMISERS:
        raise ValueError(f"optim.type must be one of {sorted(OPTIMISERS)}, got {cfg['type']!r}")
    return OPTIMISERS[kind]([p for p in params if p.requires_grad], lr=float(cfg["lr"]),
                            betas=tuple(float(b) for b in cfg["betas"]), eps=float(cfg["eps"]),
                            weight_decay=float(cfg["weight_decay"]), amsgrad=bool(cfg["amsgrad"]))


class Schedule:
    """A torch LR scheduler plus when to step it (``epoch`` or ``step``)."""

    def __init__(self, scheduler, interval: str):
        self.scheduler, self.interval = scheduler, interval

    def after_step(self) -> None:
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.scheduler is not None and self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def build_schedule(optimizer: torch.optim.Optimizer, cfg: Mapping, epochs: int, total_steps: int) -> Schedule:
    """``step``: lr *= gamma every ``step_size`` intervals; ``cosine``: cosine annealing to
    ``eta_min`` over ``t_max`` intervals (default: the whole run)."""
    kind, interval = str(cfg["type"]).lower(), str(cfg["interval"]).lower()
    if interval not in ("epoch", "step"):
        raise ValueError(f"scheduler.interval must be epoch or step, got {cfg['interval']!r}")
    if kind in ("none", "null", ""):
        return Schedule(None, interval)
    sched: torch.optim.lr_scheduler.LRScheduler
    if kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(cfg["step_size"]), gamma=float(cfg["gamma"]))
    elif kind == "cosine":
        t_max = cfg["t_max"] or (epochs if interval == "epoch" else total_steps)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(t_max), 1),
                                                           eta_min=float(cfg["eta_min"]))
    else:
        raise ValueError(f"scheduler.type must be none, step or cosine, got {cfg['type']!r}")
    return Schedule(sched, interval)
