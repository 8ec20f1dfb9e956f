"""Inference backends behind one small interface, and the ONNX export they share.

    >>> from pycrl.runtime import export_onnx, open_backend
    >>> export_onnx("models/recce-ffpp")            # -> models/recce-ffpp/model.onnx (cached)
    >>> with open_backend("auto", "models/recce-ffpp") as net:
    ...     out = net.run(batch)                    # float32 (B,3,256,256), normalised
    ...     out["prob"], out["feat"], out.get("recon")

Importing this package imports neither torch nor any runtime library; each
backend imports its own when it is opened.
"""

from .errors import BackendUnavailable, ExportError
from .interface import INPUT_NAME, OUTPUT_NAMES, Backend, BaseBackend
from .onnx_cache import OnnxExport, cache_root, export_onnx
from .selection import AUTO_ORDER, BACKENDS, open_backend

__all__ = [
    "AUTO_ORDER", "BACKENDS", "Backend", "BackendUnavailable", "BaseBackend", "ExportError",
    "INPUT_NAME", "OUTPUT_NAMES", "OnnxExport", "cache_root", "export_onnx", "open_backend",
]
