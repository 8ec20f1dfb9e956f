"""Name -> loss class table (the DeepfakeBench LOSSFUNC idea, one entry per recipe family)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)

_LOSSES: dict[str, type] = {}


def register_loss(name: str) -> Callable[[T], T]:
    """Class decorator: make a loss buildable by ``create_loss(name, **cfg)``."""

    def deco(cls: T) -> T:
        if name in _LOSSES and _LOSSES[name] is not cls:
            raise ValueError(f"loss {name!r} is already registered")
        cls.loss_name = name
        _LOSSES[name] = cls
        return cls

    return deco


def get_loss_class(name: str) -> type:
    try:
        return _LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; registered: {', '.join(list_losses())}") from None


def create_loss(name: str, **cfg):
    """Build a registered loss; unknown keyword arguments raise a TypeError naming them."""
    return get_loss_class(name)(**cfg)


def list_losses() -> list[str]:
    return sorted(_LOSSES)
