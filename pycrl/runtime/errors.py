"""Typed failures of the runtime layer."""

from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """A backend cannot run here: its library, device or a precision it was
    asked for is missing. ``backend`` names it and ``reason`` says why, so a
    caller (``open_backend("auto")``, ``pycrl info``) can fall back or report."""

    def __init__(self, backend: str, reason: str):
        super().__init__(f"backend {backend!r} is unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class ExportError(RuntimeError):
    """A model could not be exported to ONNX (or the result failed the checker)."""
