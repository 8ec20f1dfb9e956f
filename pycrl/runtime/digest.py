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
import struct
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Tuple

# Bump when the exported graph's contract changes (output names, pooling...).
EXPORT_FORMAT = 1

# torch dtype (as str) -> safetensors dtype code, so both sources hash alike.
TORCH_DTYPE_CODES = {
    "torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16",
    "torch.bfloat16": "BF16", "torch.int64": "I64", "torch.int32": "I32",
    "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL",
}

_PACKAGE = Path(__file__).resolve().parents[1]
# The code whose behaviour shapes the exported graph.
_TRACED_SOURCES = ("models/*.py", "runtime/inference_outputs.py", "runtime/onnx_export.py")


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
def code_digest() -> str:
    h = hashlib.sha256()
    for pattern in _TRACED_SOURCES:
        for path in sorted(_PACKAGE.glob(pattern)):
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
        "code": code_digest(),
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
