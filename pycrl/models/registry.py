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
from typing import Mapping, Tuple

from pycrl.export.sources import BACKBONE_SOURCES, MODEL_SOURCES
from pycrl.registry import Registry


class ArchitectureRegistry(Registry):
    """The generic table plus what model folders and export keys rely on:
    a declared-sources check and constructor-argument recording."""

    def __init__(self, kind: str, sources: Mapping[str, Tuple[str, ...]]):
        super().__init__(kind, name_attr="pycrl_name")
        self.sources = sources  # name -> files its exported graph is traced from

    def on_register(self, name: str, cls: type) -> None:
        self._check_declared(name, cls)
        _record_init_args(cls)

    def _check_declared(self, name: str, cls: type) -> None:
        if not cls.__module__.startswith("pycrl."):
            return  # registered by a user: keyed by its weights and every declared source
        own = cls.__module__[len("pycrl."):].replace(".", "/") + ".py"
        if own not in self.sources.get(name, ()):
            raise ValueError(f"{self.kind} {name!r} ({own}): declare the files its exported graph "
                             f"is traced from, {own} among them, in pycrl/export/sources.py")


RECORDS_MARK = "_pycrl_records"  # set on a wrapped __init__, so it is wrapped once


def _record_init_args(cls: type) -> None:
    """Wrap ``cls.__init__`` so instances keep their bound constructor arguments.

    Recorded after the original __init__ runs, so a registered subclass
    overwrites what its registered base recorded.
    """
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, RECORDS_MARK, False):
        return
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

    setattr(wrapped, RECORDS_MARK, True)
    type.__setattr__(cls, "__init__", wrapped)


MODELS = ArchitectureRegistry("model", MODEL_SOURCES)
BACKBONES = ArchitectureRegistry("backbone", BACKBONE_SOURCES)

# The names callers use; bound to the tables above.
register_model = MODELS.register
register_backbone = BACKBONES.register
create_model = MODELS.create
create_backbone = BACKBONES.create
list_models = MODELS.names
list_backbones = BACKBONES.names
