"""Name -> constructor registries for detectors and backbones.

Every registered class records the arguments it was built with in
``pycrl_config`` so that a model folder (pycrl.weights.save) can rebuild it
from JSON alone, without pickling the object. A pycrl architecture must be
declared in ``pycrl/export/sources.py`` (the files its exported graph is
traced from), or its export key would not see edits to its code.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Dict, List, Mapping, Tuple, Type, TypeVar

import torch.nn as nn

from pycrl.export.sources import BACKBONE_SOURCES, MODEL_SOURCES

T = TypeVar("T", bound=Type[nn.Module])


class Registry:
    """A flat name -> nn.Module class table."""

    def __init__(self, kind: str, sources: Mapping[str, Tuple[str, ...]]):
        self.kind = kind
        self.sources = sources  # name -> files its exported graph is traced from
        self._table: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            if name in self._table and self._table[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._check_declared(name, cls)
            _record_init_args(cls)
            cls.pycrl_name = name
            self._table[name] = cls
            return cls

        return deco

    def _check_declared(self, name: str, cls: type) -> None:
        if not cls.__module__.startswith("pycrl."):
            return  # registered by a user: keyed by its weights and every declared source
        own = cls.__module__[len("pycrl."):].replace(".", "/") + ".py"
        if own not in self.sources.get(name, ()):
            raise ValueError(f"{self.kind} {name!r} ({own}): declare the files its exported graph "
                             f"is traced from, {own} among them, in pycrl/export/sources.py")

    def get(self, name: str) -> type:
        try:
            return self._table[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(sorted(self._table))}"
            ) from None

    def create(self, name: str, **cfg) -> nn.Module:
        return self.get(name)(**cfg)

    def names(self) -> List[str]:
        return sorted(self._table)


def _record_init_args(cls: type) -> None:
    """Wrap ``cls.__init__`` so instances keep their bound constructor arguments.

    Recorded after the original __init__ runs, so a registered subclass
    overwrites what its registered base recorded.
    """
    if "__init__" not in cls.__dict__ or getattr(cls.__init__, "_pycrl_records", False):
        return
    init = cls.__init__
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        cfg = dict(bound.arguments)
        cfg.pop("self", None)
        extra = cfg.pop("kwargs", None) if any(
            p.kind is p.VAR_KEYWORD for p in sig.parameters.values()) else None
        if extra:
            cfg.update(extra)
        object.__setattr__(self, "pycrl_config", cfg)

    wrapped._pycrl_records = True
    cls.__init__ = wrapped


MODELS = Registry("model", MODEL_SOURCES)
BACKBONES = Registry("backbone", BACKBONE_SOURCES)


def register_model(name: str):
    """Class decorator: make a detector buildable by ``create_model(name)``."""
    return MODELS.register(name)


def register_backbone(name: str):
    """Class decorator: make a backbone buildable by ``create_backbone(name)``."""
    return BACKBONES.register(name)


def create_model(name: str, **cfg) -> nn.Module:
    return MODELS.create(name, **cfg)


def create_backbone(name: str, **cfg) -> nn.Module:
    return BACKBONES.create(name, **cfg)


def list_models() -> List[str]:
    return MODELS.names()


def list_backbones() -> List[str]:
    return BACKBONES.names()
