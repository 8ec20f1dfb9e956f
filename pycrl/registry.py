"""Name -> class tables: one class for models, backbones and losses.

Torch-free, so the table and its messages are the same for every kind of entry
and listing names needs no torch. What a kind adds at registration (the model
registry's declared-sources check and constructor recording) goes in
:meth:`Registry.on_register`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, TypeVar

C = TypeVar("C", bound=type)


class Registry:
    """A flat name -> class table. ``kind`` names entries in error messages;
    ``name_attr``, if given, is the class attribute that receives its name."""

    def __init__(self, kind: str, name_attr: Optional[str] = None):
        self.kind = kind
        self.name_attr = name_attr
        self._table: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: make ``cls`` buildable by ``create(name, **cfg)``.

        Registering the same class again is allowed (a module imported twice);
        another class under a taken name is refused, as a build by name would
        silently change meaning.
        """

        def deco(cls: C) -> C:
            if name in self._table and self._table[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self.on_register(name, cls)
            if self.name_attr is not None:
                setattr(cls, self.name_attr, name)
            self._table[name] = cls
            return cls

        return deco

    def on_register(self, name: str, cls: type) -> None:
        """Run before ``cls`` enters the table; raise to refuse it."""

    def get(self, name: str) -> type:
        try:
            return self._table[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, **cfg: Any) -> Any:
        """Build a registered class; unknown keyword arguments raise its TypeError naming them."""
        return self.get(name)(**cfg)

    def names(self) -> List[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {len(self._table)} registered)"
