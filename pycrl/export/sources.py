"""Which pycrl source files each architecture's exported graph is traced from.

The export key hashes exactly these files (see :mod:`.digest`), so an edit to
one detector's code invalidates that detector's cached and shipped graphs and
no others. Declared here, as data, rather than found by importing the models:
an inference-only install has no torch and must compute the same key as a
training install. ``pycrl.models.registry`` refuses to register a pycrl
architecture whose declaration lacks its own file, and a test checks that each
declaration covers every pycrl module its files import.

Paths are relative to the ``pycrl`` package folder. A config string naming a
backbone (e.g. ``{"backbone": "clip_vit"}``) adds that backbone's sources.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Tuple


def _models(*names: str) -> Tuple[str, ...]:
    return tuple(f"models/{n}.py" for n in names)


# Every architecture: the Detector / Backbone bases and the config-recording registry.
_COMMON = _models("base", "registry")

# Registered model name -> its sources.
MODEL_SOURCES: Dict[str, Tuple[str, ...]] = {
    "cae": _models("cae") + _COMMON,
    "classifier": _models("classifiers") + _COMMON,
    "crl": _models("crl", "efficientnet", "recce", "xception") + _COMMON,
    "efficientnetb4": _models("classifiers", "efficientnet") + _COMMON,  # builds efficientnet_b4_dfb
    "exposing": _models("exposing") + _COMMON,
    "masm": _models("masm", "layer_mask", "subspace", "vit") + _COMMON,
    "recce": _models("recce", "xception") + _COMMON,
    "xception": _models("classifiers", "xception") + _COMMON,  # builds the xception backbone
}

# Registered backbone name -> its sources.
BACKBONE_SOURCES: Dict[str, Tuple[str, ...]] = {
    "clip_vit": _models("vit") + _COMMON,
    "efficientnet_b4_dfb": _models("efficientnet") + _COMMON,
    "efficientnet_lite0": _models("efficientnet") + _COMMON,
    "tiny": _models("tiny") + _COMMON,
    "xception": _models("xception") + _COMMON,
    "xception-lite": _models("crl", "efficientnet", "recce", "xception") + _COMMON,
}

# The code that wraps and traces every graph: part of every key.
TRACING_SOURCES: Tuple[str, ...] = (
    "export/inference_outputs.py", "export/onnx_io.py", "export/onnx_trace.py")

# pycrl modules that declared files import but that do not shape the traced graph.
UNTRACED_IMPORTS: Dict[str, str] = {
    "errors.py": "exception types",
    "export/digest.py": "computes the key, not the graph",
    "export/sources.py": "this declaration, read by the key and the registry",
    "fileio.py": "writes the traced graph to disk",
    "registry.py": "the generic name -> class table the model registry builds on",
    "model_card.py": "the defaults a model folder records; the key hashes input size and config itself",
    "ops/autograd.py": "CRL's training kernel; the export traces diff_map_torch instead",
    "weights/__init__.py": "loads a model folder, whose weights the key hashes itself",
    "checkpoint.py": "loads pretrained weights, which the exported weights replace",
}


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def graph_sources(architecture: str, config: Mapping[str, Any]) -> Tuple[str, ...]:
    """The sorted sources the graph of ``architecture`` built from ``config`` is traced
    from. A module registered outside pycrl gets every declared source (its own code is
    not pycrl's to hash; its weights keep its key honest)."""
    declared = MODEL_SOURCES.get(architecture)
    if declared is None:
        declared = tuple(p for table in (MODEL_SOURCES, BACKBONE_SOURCES)
                         for paths in table.values() for p in paths)
    files = set(declared).union(TRACING_SOURCES)
    for text in _strings(config):
        files.update(BACKBONE_SOURCES.get(text, ()))
    return tuple(sorted(files))
