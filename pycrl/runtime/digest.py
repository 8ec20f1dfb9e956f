"""Content keys for exported artefacts, computable without torch.

A cached ONNX (and the OpenVINO / TensorRT artefacts built from it) is reused
only when its key matches: weights, architecture config, input size, export
options and the source of the code that traces the graph. Weights are hashed
tensor by tensor (name, dtype, shape, bytes), so a model folder's
safetensors file and the same model in memory give the same digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import re
import struct
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Sequence, Tuple

# Bump when the exported graph's contract changes (output names, pooling...).
EXPORT_FORMAT = 1

# torch dtype (as str) -> safetensors dtype code, so both sources hash alike.
TORCH_DTYPE_CODES = {
    "torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16",
    "torch.bfloat16": "BF16", "torch.int64": "I64", "torch.int32": "I32",
    "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL",
}

_PACKAGE = Path(__file__).resolve().parents[1]
# The runtime code that wraps and traces every graph.
_TRACING_SOURCES = ("runtime/inference_outputs.py", "runtime/onnx_export.py")
_MODELS = _PACKAGE / "models"
_REGISTERS = re.compile(r"""register_(?:model|backbone)\(\s*["']([^"']+)["']""")
_RELATIVE_IMPORT = re.compile(r"^from \.(\w+) import", re.MULTILINE)


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


def safetensors_digest(path: Path) -> str:
    """Digest of the tensors in a safetensors file (its metadata ignored)."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size < 8:
            raise ValueError(f"{path}: not a safetensors file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            (n,) = struct.unpack("<Q", buf[:8])
            header = json.loads(bytes(buf[8:8 + n]))
            base = 8 + n
            digest = TensorDigest()
            for name in sorted(k for k in header if k != "__metadata__"):
                info = header[name]
                begin, end = info["data_offsets"]
                digest.add(name, info["dtype"], info["shape"], buf[base + begin:base + end])
            return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _model_sources() -> Tuple[Dict[str, Path], Dict[Path, Tuple[Path, ...]]]:
    """(registered name -> defining file, file -> files it imports) for pycrl/models,
    read as text so that an inference-only install (no torch) computes the same keys."""
    registers: Dict[str, Path] = {}
    imports: Dict[Path, Tuple[Path, ...]] = {}
    for path in sorted(_MODELS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        registers.update({name: path for name in _REGISTERS.findall(text)})
        imports[path] = tuple(_MODELS / f"{m}.py" for m in _RELATIVE_IMPORT.findall(text)
                              if (_MODELS / f"{m}.py").is_file())
    return registers, imports


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def code_digest(architecture: str, config: Mapping[str, Any]) -> str:
    """Digest of the source that defines this architecture: the file registering it,
    the files registering any backbone its config names, everything those import, and
    the tracing code. Editing another detector's file leaves the key (and a shipped
    graph) valid; editing this one's invalidates it."""
    registers, imports = _model_sources()
    todo = [registers[n] for n in (architecture, *_strings(config)) if n in registers]
    if not todo:  # an unregistered module: fall back to every model source
        todo = list(imports)
    seen: set = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imports.get(path, ()))
    h = hashlib.sha256()
    for path in sorted(seen) + [_PACKAGE / p for p in _TRACING_SOURCES]:
        h.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
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


def file_digest(path: Path) -> str:
    """Key of an ONNX file given as-is (no model folder behind it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:32]
