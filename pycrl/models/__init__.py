"""Torch models: backbones and detectors, built by name.

    >>> from pycrl.models import create_model, list_models
    >>> model = create_model("recce", num_classes=2)
    >>> out = model(x)          # dict: cls, prob, feat (+ recon, ... for RECCE)

Importing this package registers every architecture family below.
"""

from .base import Backbone, Detector, FeatureInfo, global_pool
from .registry import (
    BACKBONES,
    MODELS,
    create_backbone,
    create_model,
    list_backbones,
    list_models,
    register_backbone,
    register_model,
)

# Architecture families (import order = registration; each file registers itself).
from . import tiny, xception, efficientnet, classifiers, recce, crl, exposing, masm, cae  # noqa: E402,F401
from .classifiers import BackboneClassifier, EfficientNetB4Detector, XceptionDetector  # noqa: E402
from .efficientnet import EfficientNet, EfficientNetB4DFB, EfficientNetLite0  # noqa: E402
from .crl import CRL, JointGR, XceptionLite  # noqa: E402
from .recce import GraphReasoning, GuidedAttention, Recce  # noqa: E402
from .tiny import TinyBackbone  # noqa: E402
from .xception import Xception  # noqa: E402

__all__ = [
    "Backbone", "Detector", "FeatureInfo", "global_pool",
    "BACKBONES", "MODELS", "create_backbone", "create_model", "list_backbones",
    "list_models", "register_backbone", "register_model",
    "BackboneClassifier", "EfficientNetB4Detector", "XceptionDetector",
    "EfficientNet", "EfficientNetB4DFB", "EfficientNetLite0",
    "GraphReasoning", "GuidedAttention", "Recce", "TinyBackbone", "Xception",
]
