"""Inference backends behind one small interface; the graphs they run come from
:mod:`pycrl.export`.

    >>> from pycrl.runtime import open_backend
    >>> with open_backend("auto", "models/recce-ffpp") as net:   # exports the ONNX if stale
    ...     out = net.run(batch)                    # float32 (B,3,256,256), normalised
    ...     out["prob"], out["feat"], out.get("recon")

Importing this package imports neither torch nor any runtime library; each
backend imports its own when it is opened.
"""

from .errors import BackendUnavailable
from .interface import Backend, BaseBackend
from .selection import AUTO_ORDER, BACKENDS, open_backend

__all__ = ["AUTO_ORDER", "BACKENDS", "Backend", "BackendUnavailable", "BaseBackend", "open_backend"]
