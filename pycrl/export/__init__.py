"""Making the artefacts that backends run: a model's ONNX graph (traced, cached,
keyed by content) and a Triton model repository built around it.

    >>> from pycrl.export import export_onnx
    >>> export_onnx("models/recce-ffpp")            # -> models/recce-ffpp/model.onnx (cached)
    >>> from pycrl.export.triton import export_triton

Kept apart from :mod:`pycrl.runtime` (which runs graphs and imports from here,
never the reverse). Importing this package imports no torch: an inference-only
install still computes export keys, so it knows whether a shipped graph is current.
"""

from .onnx_cache import OnnxExport, cache_root, export_onnx
from .onnx_io import INPUT_NAME, OUTPUT_NAMES

__all__ = ["INPUT_NAME", "OUTPUT_NAMES", "OnnxExport", "cache_root", "export_onnx"]
