"""Backbone + global-average-pool + linear head detectors.

``xception`` and ``efficientnetb4`` reproduce DeepfakeBench's detectors of the
same names (their ``feat`` is the last backbone feature map, as DeepfakeBench
reports it); ``classifier`` pairs any registered backbone with the same head.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn

from .base import Detector, global_pool
from .registry import create_backbone, register_model


@register_model("classifier")
class BackboneClassifier(Detector):
    """``cls = head(dropout(GAP(backbone(x))))``; ``feat`` = backbone output map."""

    def __init__(self, backbone: str = "tiny", backbone_cfg: Optional[Dict] = None,
                 num_classes: int = 2, dropout: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = create_backbone(backbone, **(backbone_cfg or {}))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(self.backbone.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(global_pool(feat)))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        feat = self.features(x)
        cls = self.classifier(feat)
        return {"cls": cls, "prob": self.probability(cls), "feat": feat}


@register_model("xception")
class XceptionDetector(BackboneClassifier):
    """DeepfakeBench ``xception`` detector (mode "original"): feat is the
    post-ReLU (B, 2048, H/32, W/32) map."""

    def __init__(self, num_classes: int = 2, dropout: float = 0.0, in_chans: int = 3):
        super().__init__("xception", {"in_chans": in_chans}, num_classes, dropout)


@register_model("efficientnetb4")
class EfficientNetB4Detector(BackboneClassifier):
    """DeepfakeBench ``efficientnetb4`` detector: feat is the (B, 1792, h, w)
    ``extract_features`` map."""

    def __init__(self, num_classes: int = 2, dropout: float = 0.0, in_chans: int = 3):
        super().__init__("efficientnet_b4_dfb", {"in_chans": in_chans}, num_classes, dropout)
