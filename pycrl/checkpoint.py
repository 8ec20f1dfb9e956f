"""Reading state dicts without unpickling code, and strict loading with
errors that name every missing/unexpected key and shape mismatch.

A checkpoint is a stranger's file: before any tensor is read, `inspect_checkpoint`
bounds what reading it would cost (a 5 MB ``.pth`` may declare gigabytes) and lists
its keys and shapes, so that a file that is too large, inflated by compression, or
of the wrong model is refused before it takes any memory.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from pycrl.errors import ModelError
from pycrl.fileio import check_regular

StateDict = Dict[str, torch.Tensor]
Source = Union[str, "os.PathLike[str]", Mapping]

_SHOW = 12  # keys listed per category in an error message

#: Most tensor bytes a checkpoint may declare (the sum of its storages): the detectors pycrl
#: imports are a few hundred MB in float32; 4 GiB leaves room for far larger ones.
MAX_CHECKPOINT_BYTES = 4 << 30
#: Most a compressed archive entry may expand. torch.save never compresses (its entries are
#: stored), so a compressed entry was re-zipped by something else: float weights deflate to
#: ~0.9 of their size, all-zero data ~1000x. Past this the entry is a bomb, not weights.
MAX_COMPRESSION_RATIO = 100
#: Largest pickle (data.pkl) a state dict needs: a few hundred bytes per key.
MAX_PICKLE_BYTES = 64 << 20
#: safetensors' own bound on its JSON header.
MAX_SAFETENSORS_HEADER = 100 << 20


class CheckpointError(ModelError, ValueError):
    """A checkpoint that cannot be read safely or does not fit the model.

    ``missing``, ``unexpected`` and ``mismatched`` (key, checkpoint shape,
    expected shape) hold the full lists; the message shows the first few.
    """

    def __init__(self, message: str, missing: Iterable[str] = (),
                 unexpected: Iterable[str] = (),
                 mismatched: Iterable[Tuple[str, tuple, tuple]] = ()):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
        super().__init__(message)


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as a checkpoint declares it, before (or without) reading its data."""

    shape: Tuple[int, ...]
    dtype: str
    nbytes: int  #: bytes of the storage it lives in


def inspect_checkpoint(path: Union[str, "os.PathLike[str]"], strip_prefix: str = "module.", *,
                       max_bytes: int = MAX_CHECKPOINT_BYTES) -> Dict[str, TensorInfo]:
    """Keys and shapes of a checkpoint file, read from its directory and header only.

    safetensors: the header (sizes bounded by the file). ``torch.save`` archives (a zip): the
    zip directory's declared sizes (the storages' sum at most ``max_bytes``; compressed entries
    at most MAX_COMPRESSION_RATIO times their stored size; each storage as large as its dtype
    and element count say) and the pickle, scanned without building anything: every global
    it names becomes an inert placeholder, every tensor a `TensorInfo`. The legacy format
    (torch < 1.6): the same scan, the storages' sum at most the file's size. Entries that are
    not tensors are refused here (plain values as such, objects of any class as objects
    ``torch.load(weights_only=True)`` would not load). The ``{"state_dict": ...}`` wrapper and
    a ``strip_prefix`` on every key are removed as `read_state_dict` does.
    """
    name = os.fspath(path)
    check_regular(name, CheckpointError)
    found: Any
    if _is_safetensors(name):
        found = _safetensors_infos(name, max_bytes)
    elif zipfile.is_zipfile(name):
        found = _archive_infos(name, max_bytes)
    else:
        found = _legacy_infos(name, max_bytes)
    if not isinstance(found, Mapping):
        raise CheckpointError(f"{name}: expected a state dict, got {type(found).__name__}")
    if isinstance(found.get("state_dict"), Mapping):
        found = found["state_dict"]
    plain = [k for k, v in found.items() if not isinstance(k, str) or not isinstance(v, (TensorInfo, _Opaque))]
    if plain:
        raise CheckpointError(f"{name}: entries that are not tensors: {plain[:_SHOW]}")
    objects = sorted({type(v).__name__ for v in found.values() if isinstance(v, _Opaque)})
    if objects:  # torch.load would refuse them, or read_state_dict as not tensors: refuse now
        raise CheckpointError(
            f"{name}: refused to unpickle: the file holds objects other than tensors and plain "
            f"containers, which are never loaded (weights_only). Re-save it as "
            f"torch.save(model.state_dict()) or safetensors. (GLOBAL {', '.join(objects[:_SHOW])})")
    out = {k: v for k, v in found.items() if isinstance(v, TensorInfo)}
    if strip_prefix and found and all(k.startswith(strip_prefix) for k in found):
        out = {k[len(strip_prefix):]: v for k, v in out.items()}
    return out


def _safetensors_infos(name: str, max_bytes: int) -> Dict[str, TensorInfo]:
    size = os.path.getsize(name)
    if size > max_bytes + MAX_SAFETENSORS_HEADER:
        raise CheckpointError(f"{name}: {size} bytes, more than the {max_bytes} a checkpoint may hold")
    with open(name, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise CheckpointError(f"{name}: not a readable checkpoint (safetensors header of {n} bytes)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise CheckpointError(f"{name}: not a readable checkpoint (safetensors header: "
                                  f"{type(err).__name__})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: not a readable checkpoint (safetensors header is not an object)")
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
            out[key] = TensorInfo(shape, str(info["dtype"]), end - begin)
        except (TypeError, ValueError, KeyError):
            raise CheckpointError(f"{name}: not a readable checkpoint (bad entry for {key!r})") from None
    return out


class _Opaque:
    """What the scan makes of any global a checkpoint's pickle names: inert, accepting any
    arguments and state, so that the scan runs no code whatever the pickle asks for."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Opaque":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Opaque":  # e.g. getattr(cls, name)(...)
        return type(self)()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


@dataclass(frozen=True)
class _StorageType:
    name: str


class _Storage:
    def __init__(self, key: str, dtype: str, itemsize: int, numel: int):
        self.key, self.dtype, self.itemsize, self.numel = key, dtype, itemsize, numel


def _rebuild_tensor(storage: Any, offset: Any = 0, size: Any = (), stride: Any = (), *rest: Any) -> Any:
    if not isinstance(storage, _Storage):
        return _Opaque()
    dims = tuple(size) if isinstance(size, (tuple, list)) else ()
    steps = tuple(stride) if isinstance(stride, (tuple, list)) else ()
    if (not all(type(d) is int and d >= 0 for d in (*dims, *steps, offset)) or len(dims) != len(steps)):
        raise CheckpointError(f"tensor on storage {storage.key!r}: malformed size {size!r} / stride {stride!r}")
    if all(dims):  # a tensor must lie inside its storage
        last = offset + sum((d - 1) * st for d, st in zip(dims, steps))
        if last >= storage.numel:
            raise CheckpointError(f"a tensor of shape {list(dims)} reaches element {last} of storage "
                                  f"{storage.key!r}, which holds {storage.numel}")
    return TensorInfo(dims, storage.dtype, storage.numel * storage.itemsize)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _rebuild_qtensor(storage: Any, offset: Any = 0, size: Any = (), stride: Any = (), *rest: Any) -> Any:
    return _rebuild_tensor(storage, offset, size, stride)


_SCAN_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._utils", "_rebuild_qtensor"): _rebuild_qtensor,
}


class _Scanner(pickle.Unpickler):
    """Reads a torch.save pickle into dicts, lists, `TensorInfo` and placeholders: no class
    is imported and no function of the file's choosing is called. ``archive`` (the zip
    entries) for the zip format, whose storages must match their entries; None for the legacy
    format (torch < 1.6), whose storages follow the pickle in the same file."""

    def __init__(self, stream: Any, where: str, archive: Optional[Mapping[str, zipfile.ZipInfo]] = None,
                 prefix: str = ""):
        super().__init__(stream)
        self.archive, self.prefix, self.where = archive, prefix, where
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        known = _SCAN_GLOBALS.get((module, name))
        # a fresh inert class named after the global, for the error message
        return known if known is not None else type(f"{module}.{name}"[:200], (_Opaque,), {})

    def persistent_load(self, pid: Any) -> Any:
        size = 5 if self.archive is not None else 6  # legacy: (..., numel, view_metadata)
        if not (isinstance(pid, tuple) and len(pid) == size and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointError(f"{self.where}: not a readable checkpoint (storage reference {pid!r:.80})")
        kind, key, numel = pid[1].name, pid[2], pid[4]
        if key in self.storages:
            return self.storages[key]
        dtype, itemsize = _storage_dtype(kind)
        declared = numel * itemsize
        if self.archive is not None:
            entry = self.archive.get(f"{self.prefix}data/{key}")
            if entry is None or entry.file_size != declared:
                found = "none" if entry is None else f"{entry.file_size} bytes"
                raise CheckpointError(f"{self.where}: storage {key!r} declares {declared} bytes "
                                      f"({numel} x {kind}); its archive entry holds {found}")
        storage = self.storages[key] = _Storage(key, dtype, itemsize, numel)
        return storage


def _storage_dtype(kind: str) -> Tuple[str, int]:
    try:
        from torch.storage import _get_dtype_from_pickle_storage_type

        dtype = _get_dtype_from_pickle_storage_type(kind)
    except Exception:
        raise CheckpointError(f"unknown storage type {kind!r}") from None
    return str(dtype).removeprefix("torch."), dtype.itemsize


def _archive_infos(name: str, max_bytes: int) -> Any:
    try:
        with zipfile.ZipFile(name) as z:
            entries = z.infolist()
            pickles = [e for e in entries if e.filename.endswith("/data.pkl") and e.filename.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"{name}: not a readable checkpoint (a zip, but not one torch.save "
                                      f"wrote: {len(pickles)} data.pkl records)")
            prefix = pickles[0].filename[:-len("data.pkl")]
            total = 0
            for e in entries:
                if e.compress_type != zipfile.ZIP_STORED and e.file_size > MAX_COMPRESSION_RATIO * max(
                        e.compress_size, 1):
                    raise CheckpointError(
                        f"{name}: entry {e.filename} expands {e.file_size / max(e.compress_size, 1):.0f}-fold "
                        f"({e.compress_size} -> {e.file_size} bytes; at most {MAX_COMPRESSION_RATIO} allowed): "
                        f"refused as a decompression bomb")
                if e.compress_type == zipfile.ZIP_STORED and e.file_size != e.compress_size:
                    raise CheckpointError(f"{name}: entry {e.filename} declares {e.file_size} bytes but "
                                          f"stores {e.compress_size}")
                if e.filename.startswith(prefix + "data/"):
                    total += e.file_size
            if total > max_bytes:
                raise CheckpointError(f"{name}: its tensors declare {total} bytes ({total / 2**30:.1f} GiB), "
                                      f"more than the {max_bytes} ({max_bytes / 2**30:.1f} GiB) allowed")
            if pickles[0].file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{name}: data.pkl of {pickles[0].file_size} bytes, more than a "
                                      f"state dict needs ({MAX_PICKLE_BYTES})")
            data = z.read(pickles[0])
        index = {e.filename: e for e in entries}
        return _Scanner(io.BytesIO(data), name, index, prefix).load()
    except Exception as err:  # bad zip, truncated or malformed pickle, ...
        raise _unreadable(name, err) from None


def _unreadable(name: str, err: Exception) -> CheckpointError:
    """Any failure while scanning a checkpoint, as one CheckpointError naming the file."""
    if isinstance(err, CheckpointError):
        return err if str(err).startswith(name) else CheckpointError(f"{name}: {err}")
    if isinstance(err, (RecursionError, MemoryError)):
        return CheckpointError(f"{name}: not a readable checkpoint ({type(err).__name__})")
    return CheckpointError(f"{name}: not a readable checkpoint ({type(err).__name__}: {err})")


#: torch.save's legacy (torch < 1.6) format opens with this pickled number.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _legacy_infos(name: str, max_bytes: int) -> Any:
    """The legacy format: pickles (magic number, protocol, system info, the object), then the
    storages' raw bytes. torch allocates each storage as the pickle declares it before reading
    it, so the declared total must fit in the file itself (nothing is compressed) and under
    ``max_bytes``."""
    size = os.path.getsize(name)
    try:
        with open(name, "rb") as f:
            header = [_Scanner(f, name).load() for _ in range(3)]
            if header[0] != _LEGACY_MAGIC:
                raise CheckpointError(f"{name}: not a readable checkpoint (neither safetensors nor a "
                                      f"torch.save file)")
            scanner = _Scanner(f, name)
            found = scanner.load()
    except Exception as err:  # not a pickle, truncated, ...
        raise _unreadable(name, err) from None
    total = sum(st.numel * st.itemsize for st in scanner.storages.values())
    if total > min(size, max_bytes):
        raise CheckpointError(f"{name}: its tensors declare {total} bytes, more than "
                              f"{'the file holds' if total > size else 'allowed'} "
                              f"({min(size, max_bytes)})")
    return found


def _is_safetensors(path: str) -> bool:
    """safetensors files start with a little-endian u64 header size and '{'."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_state_dict(source: Source, strip_prefix: str = "module.", *,
                    max_bytes: int = MAX_CHECKPOINT_BYTES,
                    expected: Optional[Mapping[str, Iterable[int]]] = None) -> StateDict:
    """A flat ``{key: tensor}`` dict from a file or a mapping.

    Files: safetensors, or anything ``torch.save`` wrote, read with
    ``torch.load(weights_only=True)`` so no code in the file ever runs; a
    pickle that needs more than tensors and containers raises CheckpointError.
    Before any tensor is read, `inspect_checkpoint` bounds the file's declared
    size (``max_bytes``) and checks its keys (and, given ``expected`` shapes,
    that they fit). A ``{"state_dict": {...}}`` wrapper is unwrapped and a
    leading ``strip_prefix`` (DistributedDataParallel's ``module.``) is removed
    when every key has it.
    """
    name = "<state dict>"
    if isinstance(source, Mapping):
        state = source
    else:
        name = os.fspath(source)
        if not os.path.exists(name):
            raise FileNotFoundError(name)
        declared = inspect_checkpoint(name, strip_prefix, max_bytes=max_bytes)
        if expected is not None:
            raise_if_mismatch(declared, {k: tuple(v) for k, v in expected.items()}, name, "the model")
        try:
            if _is_safetensors(name):
                from safetensors.torch import load_file
                state = load_file(name, device="cpu")
            else:
                state = torch.load(name, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            lines = str(e).splitlines() or [""]
            detail = next((ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported" in ln),
                          lines[0])
            raise CheckpointError(
                f"{name}: refused to unpickle: the file holds objects other than tensors "
                f"and plain containers, which are never loaded (weights_only). Re-save it "
                f"as torch.save(model.state_dict()) or safetensors. ({detail})") from e
        except Exception as e:  # corrupt zip, truncated file, bad header, ...
            raise CheckpointError(f"{name}: not a readable checkpoint "
                                  f"({type(e).__name__}: {e})") from e

    if not isinstance(state, Mapping):
        raise CheckpointError(f"{name}: expected a state dict, got {type(state).__name__}")
    if isinstance(state.get("state_dict"), Mapping):  # {"state_dict": ..., extras}
        state = state["state_dict"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{name}: entries that are not tensors: {bad[:_SHOW]}")
    out = dict(state)
    if strip_prefix and out and all(k.startswith(strip_prefix) for k in out):
        out = {k[len(strip_prefix):]: v for k, v in out.items()}
    return out


def compare_shapes(found: Mapping, expected: Mapping) -> Tuple[List[str], List[str], List]:
    """(missing, unexpected, mismatched) between a state dict and expected shapes."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [(k, tuple(found[k].shape), tuple(expected[k])) for k in expected
                  if k in found and tuple(found[k].shape) != tuple(expected[k])]
    return missing, unexpected, mismatched


def raise_if_mismatch(found: Mapping, expected: Mapping, source: str, target: str) -> None:
    missing, unexpected, mismatched = compare_shapes(found, expected)
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected)):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {label}: {items[:_SHOW]}{more}")
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {list(a)} vs expected {list(b)}"
                          for k, a, b in mismatched[:_SHOW])
        parts.append(f"{len(mismatched)} shape mismatches: {shown}")
    raise CheckpointError(f"{source} does not fit {target}: " + "; ".join(parts),
                          missing, unexpected, mismatched)


def check_and_load(model: nn.Module, state: Mapping, source: str = "checkpoint",
                   assign: bool = False) -> nn.Module:
    """Strict load after a key/shape check that reports everything at once.

    ``assign=True`` (for models built on the meta device) adopts the given
    tensors, cast to the dtype of the module's own entries.
    """
    own = model.state_dict()
    raise_if_mismatch(state, {k: v.shape for k, v in own.items()}, source,
                      type(model).__name__)
    if assign:
        state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def build_on_meta(factory, *args, **kwargs) -> nn.Module:
    """Construct a module without allocating or initialising its tensors."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def assert_materialised(model: nn.Module, what: Optional[str] = None) -> None:
    left = [k for k, t in list(model.named_parameters()) + list(model.named_buffers())
            if t.is_meta]
    if left:
        raise CheckpointError(f"{what or type(model).__name__}: no values for {left[:_SHOW]}")
