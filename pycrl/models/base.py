"""Shared contracts: a backbone is an ordered list of named stages, a detector
maps an image batch to a dict with ``cls``/``prob``/``feat``."""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl import model_card as card


class FeatureInfo(NamedTuple):
    name: str
    channels: int
    reduction: int  # nominal input/feature size ratio


class Backbone(nn.Module):
    """Stage-wise feature extractor.

    Subclasses set ``feature_info`` (one entry per stage, in execution order)
    and implement ``run_stage``. Detectors that tap or splice the middle of a
    backbone (RECCE) use ``forward_stages`` instead of reaching into modules.
    """

    feature_info: List[FeatureInfo]

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def stage_modules(self, name: str) -> List[nn.Module]:
        """The modules holding stage ``name``'s parameters (to freeze a stage, for example)."""
        raise NotImplementedError(f"{type(self).__name__} does not list the modules of its stages")

    @property
    def stage_names(self) -> List[str]:
        return [f.name for f in self.feature_info]

    @property
    def num_features(self) -> int:
        return self.feature_info[-1].channels

    def forward_stages(self, x: torch.Tensor, first: str, last: str) -> torch.Tensor:
        """Run stages ``first`` .. ``last`` inclusive."""
        names = self.stage_names
        i, j = names.index(first), names.index(last)
        if j < i:
            raise ValueError(f"stage {last!r} comes before {first!r}")
        for name in names[i:j + 1]:
            x = self.run_stage(name, x)
        return x

    def forward_features(self, x: torch.Tensor,
                         names: Optional[Iterable[str]] = None) -> Dict[str, torch.Tensor]:
        """Outputs of the requested stages (all stages when ``names`` is None).

        Stops after the deepest requested stage, so asking for shallow
        features is cheap.
        """
        order = self.stage_names
        wanted = set(order if names is None else names)
        unknown = wanted.difference(order)
        if unknown:
            raise KeyError(f"unknown stages {sorted(unknown)}; stages: {order}")
        out: Dict[str, torch.Tensor] = {}
        for name in order:
            x = self.run_stage(name, x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        names = self.stage_names
        return self.forward_stages(x, names[0], names[-1])


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C). flatten(1), not squeeze(): batch 1 keeps its axis."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class Detector(nn.Module):
    """Base of every detector: ``forward(x)`` returns at least
    ``cls`` (B, num_classes logits), ``prob`` (B, fake probability) and ``feat``.

    Label convention (DeepfakeBench): class 1 = fake, so with two classes
    ``prob = softmax(cls)[:, 1]``; with one logit ``prob = sigmoid(cls[:, 0])``.
    """

    num_classes: int = 2
    # What a model folder records by default (pycrl.weights.save).
    default_meta: Dict = {
        "input_size": list(card.DEFAULT_INPUT_SIZE),
        "mean": list(card.DEFAULT_MEAN),
        "std": list(card.DEFAULT_STD),
        "labels": dict(card.DEFAULT_LABELS),
        "decision_threshold": card.DEFAULT_THRESHOLD,
    }

    def inference_module(self) -> nn.Module:
        """The module exporters trace: ``self``, or a plain equivalent without
        training-only structure (e.g. MASM merges its weight subspaces)."""
        return self

    def after_backward(self, step: int) -> Optional[Dict[str, float]]:
        """Called by the trainer between backward and the optimiser step (gradients
        unscaled); may edit gradients. Returns values to log, or None."""
        return None

    def probability(self, cls: torch.Tensor) -> torch.Tensor:
        if cls.shape[1] == 1:
            return torch.sigmoid(cls[:, 0])
        return torch.softmax(cls, dim=1)[:, 1]
