"""Content keys for exported artefacts, computable without torch.

A cached ONNX (and the OpenVINO / TensorRT artefacts built from it) is reused
only when its key matches: weights, architecture config, input size, export
options and the code the graph is traced from (the files :mod:`.sources`
declares for the architecture, plus the tracing code). Weights are hashed
tensor by tensor (name, dtype, shape, bytes), so a model folder's
safetensors file and the same model in memory give the same digest.

Code is hashed as its syntax tree without docstrings (comments never reach
the tree), so editing documentation or comments leaves shipped graphs current.
The tree is written out by :func:`normalised_source`, not ``ast.dump``, whose
text changes between Python versions (3.13 omits empty fields): installs on
different Pythons must agree on a key.
"""

from __future__ import annotations

import ast
import hashlib
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Tuple

from pycrl.errors import ModelFolderError
from pycrl.fileio import open_regular
from pycrl.model_folder import parse_json

from .sources import graph_sources

# Bump when the exported graph's contract changes (output names, pooling...).
EXPORT_FORMAT = 1

# torch dtype (as str) -> safetensors dtype code, so both sources hash alike.
TORCH_DTYPE_CODES = {
    "torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16",
    "torch.bfloat16": "BF16", "torch.int64": "I64", "torch.int32": "I32",
    "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL",
}

_PACKAGE = Path(__file__).resolve().parents[1]


class TensorDigest:
    """Order-independent-by-construction digest: feed tensors sorted by name."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, name: str, dtype: str, shape: Sequence[int], data: Any) -> None:
        head = json.dumps([name, dtype, list(shape)]).encode()
        self._h.update(struct.pack("<Q", len(head)) + head)
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


# safetensors' own bound on its JSON header.
MAX_SAFETENSORS_HEADER = 100 << 20


def safetensors_digest(path: Path) -> str:
    """Digest of the tensors in a safetensors file (its metadata ignored).

    The file is a stranger's: its header is checked (UTF-8 JSON of bounded size and depth, each
    entry a dtype, a shape and offsets inside the file) and any fault is a ModelFolderError
    naming the file, never a struct, JSON or key error."""
    with open_regular(path, ModelFolderError) as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFolderError(f"{path}: not a safetensors file ({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            (n,) = struct.unpack("<Q", buf[:8])
            if not 2 <= n <= min(size - 8, MAX_SAFETENSORS_HEADER):
                raise ModelFolderError(f"{path}: not a safetensors file (header of {n} bytes in a "
                                       f"file of {size})")
            header = parse_json(path, bytes(buf[8:8 + n]))
            if not isinstance(header, dict):
                raise ModelFolderError(f"{path}: not a safetensors file (header is not an object)")
            base = 8 + n
            digest = TensorDigest()
            for name in sorted(k for k in header if k != "__metadata__"):
                dtype, shape, (begin, end) = _entry(path, name, header[name], size - base)
                digest.add(name, dtype, shape, buf[base + begin:base + end])
            return digest.hexdigest()


def _entry(path: Path, name: str, info: Any, room: int) -> Tuple[str, list, Tuple[int, int]]:
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if isinstance(info, dict) and isinstance(info.get("dtype"), str):
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (isinstance(shape, list) and all(count(d) for d in shape)
                and isinstance(offsets, list) and len(offsets) == 2 and all(count(o) for o in offsets)
                and offsets[0] <= offsets[1] <= room):
            return info["dtype"], shape, (offsets[0], offsets[1])
    raise ModelFolderError(f"{path}: not a safetensors file (bad entry for tensor {name!r})")


def _tree(node: Any) -> Any:
    """A syntax tree as nested lists, leaving out empty fields (as ``ast.dump``
    does from Python 3.13 on) so that fields added in newer versions, empty
    when unused, do not change the result."""
    if isinstance(node, ast.AST):
        fields = [[name, _tree(value)] for name in node._fields
                  if (value := getattr(node, name, None)) is not None and value != []]
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_tree(v) for v in node]
    return repr(node)


def normalised_source(path: Path) -> bytes:
    """The code of a Python file without its docstrings and comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        # a statement that is only a string literal does nothing
        if hasattr(node, "body") and isinstance(node.body, list):
            node.body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(
                s.value, ast.Constant) and isinstance(s.value.value, str))]
    return json.dumps(_tree(tree), separators=(",", ":")).encode()


def code_digest(architecture: str, config: Mapping[str, Any]) -> str:
    """Digest of the code this architecture's graph is traced from: its declared
    sources, those of any backbone its config names, and the tracing code.
    Editing another detector's file leaves the key (and a shipped graph) valid;
    editing this one's code invalidates it."""
    h = hashlib.sha256()
    for rel in graph_sources(architecture, config):
        text = hashlib.sha256(normalised_source(_PACKAGE / rel)).hexdigest()
        h.update(f"{rel}\0{text}\n".encode())
    return h.hexdigest()


def without_pretrained(cfg: Any) -> Any:
    """``pretrained`` only chose an initialisation the weights replace."""
    if isinstance(cfg, Mapping):
        return {k: without_pretrained(v) for k, v in cfg.items() if k != "pretrained"}
    if isinstance(cfg, (list, tuple)):
        return [without_pretrained(v) for v in cfg]
    return cfg


def export_key(*, architecture: str, config: Mapping[str, Any], input_shape: Iterable[int],
               weights: str, opset: int, batch_dynamic: bool,
               outputs: Tuple[str, ...] | None) -> str:
    doc = {
        "format": EXPORT_FORMAT,
        "architecture": architecture,
        "config": without_pretrained(config),
        "input_shape": [int(d) for d in input_shape],
        "weights": weights,
        "opset": int(opset),
        "batch_dynamic": bool(batch_dynamic),
        "outputs": list(outputs) if outputs is not None else None,
        "code": code_digest(architecture, config),
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read only if it is a regular file."""
    h = hashlib.sha256()
    with open_regular(path, ModelFolderError) as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """Key of an ONNX file given as-is (no model folder behind it)."""
    return file_sha256(path)[:32]
