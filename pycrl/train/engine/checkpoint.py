"""Training checkpoints: everything needed to continue a run exactly where it stopped.

``checkpoints/last.pt`` holds model, optimiser, scheduler and grad-scaler states, every RNG
state, the position (epoch, step, batch within the epoch), the best validation result and
the config. ``checkpoints/best.pt`` holds the weights of the best validation so far. Both
are read back with ``torch.load(weights_only=True)``: tensors and plain containers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pycrl.fileio import atomic_path
from pycrl.train.engine.runtime import rng_state, set_rng_state

LAST = "last.pt"
BEST = "best.pt"


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_training_state(path: Path, *, model, loss, optimizer, schedule, scaler, progress: dict,
                        config: dict) -> None:
    _save_atomic({"model": model.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": schedule.state_dict(), "scaler": scaler.state_dict() if scaler else {},
                  "rng": rng_state(), "progress": progress, "config": config}, path)


def save_weights(path: Path, model) -> None:
    _save_atomic({"model": model.state_dict()}, path)


def read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model_state(model: torch.nn.Module, state: dict) -> None:
    """Strict load; buffers a loss registered during training (the real centre on a model
    built without one) are registered first, so they come back too."""
    own = model.state_dict()
    for key, value in state.items():
        if key not in own or own[key].shape != value.shape:
            owner, _, leaf = key.rpartition(".")
            module = model.get_submodule(owner)
            if leaf in dict(module.named_parameters(recurse=False)):
                continue  # a real mismatch: let load_state_dict report it
            module.register_buffer(leaf, value.clone().to(next(iter(own.values())).device))
    model.load_state_dict(state, strict=True)


def restore_training_state(ckpt: dict, *, model, loss, optimizer, schedule, scaler) -> dict:
    """Load a ``last.pt`` into the live objects; returns its ``progress``."""
    load_model_state(model, ckpt["model"])
    loss.load_state_dict(ckpt.get("loss", {}))
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["scheduler"])
    if scaler and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return ckpt["progress"]
