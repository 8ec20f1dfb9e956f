"""Checkpoints are bounded before they are read: declared sizes from the zip directory,
compression ratios, storages against their dtype and length, keys and shapes from the
pickle, all checked before torch.load reads a single tensor."""

import io
import pickle
import time
import zipfile
from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")

from pycrl import checkpoint  # noqa: E402
from pycrl.checkpoint import CheckpointError, inspect_checkpoint, read_state_dict  # noqa: E402


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Fails the test if anything reaches torch.load or safetensors' loader."""
    def refuse(*args, **kwargs):
        raise AssertionError("a tensor was read before the checkpoint was refused")

    monkeypatch.setattr(checkpoint.torch, "load", refuse)
    monkeypatch.setattr("safetensors.torch.load_file", refuse)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _rezip(data: bytes, compression=zipfile.ZIP_DEFLATED, replace=None) -> bytes:
    """The entries of a torch.save archive written again, compressed and/or replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            body = (replace or {}).get(info.filename.split("/", 1)[1], src.read(info))
            dst.writestr(info.filename, body)
    return out.getvalue()


def test_a_compressed_zero_tensor_is_refused_as_a_bomb(tmp_path, no_tensor_reads):
    bomb = tmp_path / "bomb.pth"
    bomb.write_bytes(_rezip(_saved({"w": torch.zeros(64 << 20 >> 2)})))  # 64 MiB of zeros
    assert bomb.stat().st_size < 200_000
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="decompression bomb"):
        read_state_dict(bomb)
    assert time.perf_counter() - t0 < 2.0


def test_declared_size_over_the_cap_is_refused(tmp_path, no_tensor_reads):
    big = tmp_path / "big.pth"
    big.write_bytes(_saved({"w": torch.ones(1 << 20)}))  # 4 MiB, stored as torch writes it
    with pytest.raises(CheckpointError, match="declare 4194304 bytes"):
        read_state_dict(big, max_bytes=1 << 20)
    with pytest.raises(CheckpointError, match="more than"):
        inspect_checkpoint(big, max_bytes=1 << 20)


class _FakeStorage:
    pass


class _Tensor:
    """Pickles as torch.save pickles a tensor: _rebuild_tensor_v2 on a persistent storage."""

    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride = tuple(int(torch.tensor(self.shape[i + 1:]).prod()) for i in range(len(self.shape)))
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, self.shape, stride, False, OrderedDict()))


def _crafted(state, numel: int, entry_bytes: int) -> bytes:
    """A torch.save-shaped archive whose pickle says storage '0' holds ``numel`` floats while
    its entry holds ``entry_bytes``."""
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(state)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", b"\0" * entry_bytes)
        z.writestr("archive/version", "3\n")
    return out.getvalue()


def test_a_storage_larger_than_its_entry_is_refused(tmp_path, no_tensor_reads):
    s = _FakeStorage()
    path = tmp_path / "lies.pth"
    path.write_bytes(_crafted({"w": _Tensor(s, (10**9,))}, numel=10**9, entry_bytes=16))
    with pytest.raises(CheckpointError, match="declares 4000000000 bytes"):
        read_state_dict(path)


def test_a_tensor_outside_its_storage_is_refused(tmp_path, no_tensor_reads):
    s = _FakeStorage()
    path = tmp_path / "outside.pth"
    path.write_bytes(_crafted({"w": _Tensor(s, (1000, 1000))}, numel=4, entry_bytes=16))
    with pytest.raises(CheckpointError, match="reaches element"):
        read_state_dict(path)


def test_keys_and_shapes_are_checked_before_reading(tmp_path, no_tensor_reads):
    path = tmp_path / "ok.pth"
    path.write_bytes(_saved({"state_dict": {"module.a": torch.zeros(2, 3), "module.b": torch.ones(4)[1:]},
                             "epoch": 3}))
    found = inspect_checkpoint(path)
    assert {k: v.shape for k, v in found.items()} == {"a": (2, 3), "b": (3,)}
    assert found["a"].dtype == "float32" and found["a"].nbytes == 24
    with pytest.raises(CheckpointError, match="does not fit") as info:
        read_state_dict(path, expected={"a": (2, 3), "c": (1,)})
    assert info.value.missing == ["c"] and info.value.unexpected == ["b"]


def test_legacy_format_is_bounded_by_its_file(tmp_path, monkeypatch):
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    assert {k: v.shape for k, v in inspect_checkpoint(legacy).items()} == {"w": (2, 3), "b": (2,)}
    assert torch.equal(read_state_dict(legacy)["w"], torch.arange(6.0).reshape(2, 3))
    with pytest.raises(CheckpointError, match="more than allowed"):
        inspect_checkpoint(legacy, max_bytes=16)
    # a pickle declaring a storage larger than the whole file: torch would allocate it first
    data = legacy.read_bytes()
    grown = tmp_path / "grown.pth"
    numel = b"K\x06Nt"  # BININT1 6, NONE (view metadata), TUPLE: the 6-element storage's reference
    assert data.count(numel) == 1
    grown.write_bytes(data.replace(numel, b"J\x00\x00\x00\x40Nt"))  # BININT 2**30 elements
    monkeypatch.setattr(checkpoint.torch, "load", lambda *a, **k: pytest.fail("read before refusing"))
    with pytest.raises(CheckpointError, match="more than the file holds"):
        read_state_dict(grown)


def test_garbage_files_are_refused(tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(_saved({"w": torch.zeros(1000)})[:-300])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_state_dict(truncated)
    bad_pickle = tmp_path / "bad_pickle.pth"
    bad_pickle.write_bytes(_rezip(_saved({"w": torch.zeros(3)}), zipfile.ZIP_STORED,
                                  replace={"data.pkl": b"[" * 50_000}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_state_dict(bad_pickle)


def test_a_fifo_checkpoint_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "ckpt.pth"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):
        read_state_dict(fifo)


def test_honest_checkpoints_load_as_before(tmp_path):
    state = {"a": torch.randn(5, 4), "b": torch.arange(6, dtype=torch.int64).reshape(2, 3)[:, 1:],
             "c": torch.randn(3).half(), "p": torch.nn.Parameter(torch.randn(2))}
    path = tmp_path / "ok.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    got = read_state_dict(path)
    assert set(got) == set(state) and all(torch.equal(got[k], state[k].detach()) for k in state)
    from safetensors.torch import save_file

    st = tmp_path / "ok.safetensors"
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(st))
    assert {k: v.shape for k, v in inspect_checkpoint(st).items()} == {k: tuple(v.shape) for k, v in state.items()}
    assert all(torch.equal(read_state_dict(st)[k], state[k].detach()) for k in state)
