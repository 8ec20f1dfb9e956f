"""pycrl's error hierarchy: every error pycrl raises on purpose derives from `PycrlError`.

Callers catch ``PycrlError`` to tell a refusal by pycrl (bad option, bad model folder, bad
media, missing backend) from a bug. Each family also derives from the built-in exception
callers would have caught before (``ValueError``, ``FileNotFoundError``, ``RuntimeError``),
so ``except ValueError`` keeps working.

    PycrlError
    ├── OptionError (ValueError)            a scoring option is unknown or out of its range
    ├── ModelError                          a model cannot be used
    │   ├── ModelFolderError (ValueError)   model.json missing, malformed or out of bounds
    │   └── CheckpointError (ValueError)    a checkpoint's keys, shapes or format (pycrl.weights)
    ├── MediaError                          an input cannot be turned into frames (pycrl.media.errors)
    ├── BackendUnavailable (RuntimeError)   a backend cannot run here, with the reason
    └── ExportError (RuntimeError)          a graph could not be exported
"""

from __future__ import annotations


class PycrlError(Exception):
    """Base of every error pycrl raises on purpose."""


class OptionError(PycrlError, ValueError):
    """A scoring option is unknown, of the wrong type or outside its allowed values."""


class ModelError(PycrlError):
    """A model cannot be used: its folder, its card or its weights."""


class ModelFolderError(ModelError, ValueError):
    """A model folder is missing, malformed or unusable."""


class BackendUnavailable(PycrlError, RuntimeError):
    """A backend cannot run here: its library, device or a precision it was asked for is
    missing. ``backend`` names it and ``reason`` says why, so a caller (``open_backend("auto")``,
    ``pycrl info``) can fall back or report."""

    def __init__(self, backend: str, reason: str):
        super().__init__(f"backend {backend!r} is unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class ExportError(PycrlError, RuntimeError):
    """A model could not be exported to ONNX (or the result failed the checker)."""
