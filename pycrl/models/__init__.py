"""Torch models: backbones and detectors, built by name.

    >>> from pycrl.models import create_model, list_models
    >>> model = create_model("recce", num_classes=2)
    >>> out = model(x)          # dict: cls, prob, feat (+ recon, ... for RECCE)

Importing this package registers every architecture family below.
"""

# Architecture families (import order = registration; each file registers itself).
from . import cae, classifiers, crl, efficientnet, exposing, masm, recce, tiny, xception  # noqa: F401
from .base import Backbone, Detector, FeatureInfo, global_pool
from .classifiers import BackboneClassifier, EfficientNetB4Detector, XceptionDetector
from .crl import CRL, JointGR, XceptionLite
from .efficientnet import EfficientNet, EfficientNetB4DFB, EfficientNetLite0
from .recce import GraphReasoning, GuidedAttention, Recce
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
from .tiny import TinyBackbone
from .xception import Xception

__all__ = [
    "Backbone", "Detector", "FeatureInfo", "global_pool",
    "BACKBONES", "MODELS", "create_backbone", "create_model", "list_backbones",
    "list_models", "register_backbone", "register_model",
    "BackboneClassifier", "EfficientNetB4Detector", "XceptionDetector", "CRL", "JointGR", "XceptionLite",
    "EfficientNet", "EfficientNetB4DFB", "EfficientNetLite0",
    "GraphReasoning", "GuidedAttention", "Recce", "TinyBackbone", "Xception",
]
