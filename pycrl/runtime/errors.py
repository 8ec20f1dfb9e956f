"""Typed failures of the runtime layer (defined with the rest in `pycrl.errors`)."""

from __future__ import annotations

from pycrl.errors import BackendUnavailable

__all__ = ["BackendUnavailable"]
