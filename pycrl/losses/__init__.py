"""Losses by name, following DeepfakeBench's detector contract.

    >>> from pycrl.losses import create_loss
    >>> loss = create_loss("recce", recipe="paper")
    >>> terms = loss(model(x), {"image": x, "label": y})   # {"overall", "cls", "recon", "metric"}
    >>> terms["overall"].backward()

Registered: ``ce`` (cross-entropy, any detector), ``recce`` (recipes ``paper`` and
``deepfakebench``), ``crl`` (CE + multi-view reconstruction + real-sample compactness).
Labels: 0 = real, 1 = fake. Stateful losses (``crl`` in centroid mode) need
``loss.attach(model)`` before the first call.
"""

from . import cae, crl, exposing, masm, recce  # noqa: F401  (registers the losses)
from .base import Loss, real_mask, split_batch
from .crl import CENTRE_BUFFER, COMPACT_MODES, CRLLoss
from .recce import RECCE_RECIPES, CrossEntropyLoss, RecceLoss
from .registry import LOSSES, create_loss, get_loss_class, list_losses, register_loss

__all__ = [
    "CENTRE_BUFFER", "COMPACT_MODES", "RECCE_RECIPES", "CRLLoss", "CrossEntropyLoss", "Loss", "RecceLoss",
    "LOSSES", "create_loss", "get_loss_class", "list_losses", "real_mask", "register_loss", "split_batch",
]
