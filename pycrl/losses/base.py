"""What every loss shares: the call contract and reading labels/images from a batch.

A loss is called as ``loss(out, batch)`` with the detector's output dict and either the
batch dict (DeepfakeBench ``data_dict``: ``image`` (B,3,H,W), ``label`` (B,), 0 = real) or
just the label tensor when the loss needs no image. It returns a dict with ``overall`` (the
scalar to back-propagate) and one entry per named term, for logging.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


class Loss:
    """Base class. Subclasses implement ``forward(out, labels, images) -> dict``."""

    needs_image: bool = False

    def attach(self, model: torch.nn.Module) -> None:
        """Give the loss the model whose buffers it maintains (no-op unless it keeps state)."""

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters the loss owns (e.g. uncertainty weights); the trainer
        optimises them with the model's and checkpoints them with ``state_dict``."""
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def prepare_batch(self, batch: dict) -> dict:
        """Transform a training batch before the forward pass (e.g. mixup); identity here.
        Whatever the loss needs later rides along in the returned dict."""
        return batch

    def config(self) -> dict:
        """The keyword arguments that rebuild this loss (for provenance)."""
        return dict(getattr(self, "_config", {}))

    def __call__(self, out: Mapping, batch) -> dict[str, torch.Tensor]:
        labels, images = split_batch(batch)
        if self.needs_image and images is None:
            raise ValueError(f"{type(self).__name__} needs the input images: pass the batch dict "
                             "{'image': ..., 'label': ...}, not the labels alone")
        return self.forward(out, labels.to(out["cls"].device), images)

    def forward(self, out: Mapping, labels: torch.Tensor, images: torch.Tensor | None) -> dict:
        raise NotImplementedError


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(labels, images or None) from a batch dict or a bare label tensor."""
    if isinstance(batch, Mapping):
        if "label" not in batch:
            raise KeyError("batch has no 'label' entry")
        return torch.as_tensor(batch["label"]), batch.get("image")
    return torch.as_tensor(batch), None


def real_mask(labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1.0 for real samples (label 0), 0.0 for fakes."""
    return (labels == 0).to(dtype)
