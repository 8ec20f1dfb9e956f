"""A few-thousand-parameter backbone so tests and smoke runs take milliseconds."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .base import Backbone, FeatureInfo
from .registry import register_backbone


@register_backbone("tiny")
class TinyBackbone(Backbone):
    """``len(widths)`` stages of stride-2 3x3 conv + BN + ReLU: stage1, stage2, ..."""

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (8, 16, 32, 64)):
        super().__init__()
        widths = [int(w) for w in widths]
        self.stages = nn.ModuleList()
        self.feature_info = []
        c = in_chans
        for i, w in enumerate(widths):
            self.stages.append(nn.Sequential(
                nn.Conv2d(c, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)))
            self.feature_info.append(FeatureInfo(f"stage{i + 1}", w, 2 ** (i + 1)))
            c = w

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.stages[int(name[len("stage"):]) - 1](x)
