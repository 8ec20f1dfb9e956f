"""Model folders from strangers: files that are not plain files, malformed documents, damaged
or replaced graphs and weights are refused at load with pycrl's typed errors naming the file,
never a hang, a RecursionError, a UnicodeDecodeError or a runtime library's own exception."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import pycrl
from pycrl.errors import ModelFolderError, PycrlError
from pycrl.export import export_onnx
from pycrl.model_card import ModelCard
from pycrl.model_folder import NAMED_MODELS
from pycrl.runtime import open_backend

SAMPLE = Path(__file__).resolve().parents[1] / "pycrl" / "assets" / "samples" / "astronaut_real.mp4"
DEFAULT = NAMED_MODELS["default"]
CPU_BACKENDS = ["openvino", "onnxruntime"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def copy(tmp_path):
    """A copy of the bundled default model folder (without its OpenVINO blobs)."""
    folder = tmp_path / "default"
    shutil.copytree(DEFAULT, folder, ignore=shutil.ignore_patterns("openvino"))
    return folder


def load_within(timeout, fn, *args, **kwargs):
    """``fn(*args)`` in a thread: its exception, or a failure if it is still blocked (e.g. on
    opening a FIFO) after ``timeout`` seconds."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: B036 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{fn.__name__} still blocked after {timeout} s")
    return outcome


def _unblock(fifo):
    try:  # a reader blocked on the FIFO returns once a writer comes and goes
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("name", ["model.json", "model.safetensors", "model.onnx", "model.onnx.json"])
def test_a_fifo_in_the_folder_is_refused_before_it_is_opened(copy, name):
    fifo = copy / name
    fifo.unlink()
    os.mkfifo(fifo)
    try:
        outcome = load_within(60, pycrl.Detector, copy)
    finally:
        _unblock(fifo)
    err = outcome.get("error")
    assert isinstance(err, ModelFolderError), outcome
    assert str(fifo) in str(err) and "FIFO" in str(err)


def test_a_device_behind_a_link_is_refused(copy):
    (copy / "model.safetensors").unlink()
    (copy / "model.safetensors").symlink_to("/dev/zero")
    outcome = load_within(60, pycrl.Detector, copy)
    err = outcome.get("error")
    assert isinstance(err, ModelFolderError) and "character device" in str(err), outcome


def _set_json(folder, data: bytes):
    (folder / "model.json").write_bytes(data)


def _nested(depth):
    doc = json.loads((DEFAULT / "model.json").read_text())
    inner = 1
    for _ in range(depth):
        inner = {"x": inner}
    doc["config"]["extra"] = inner
    return json.dumps(doc).encode()


@pytest.mark.parametrize("data, named", [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"format": ' * 100_000, "nested too deeply"),
    (None, "nested too deeply"),  # deep but within json's own limit: refused before recursive code
    ("{\"format\": \"pycrl-model\", \"name\": \"caf\xe9\"}".encode("latin-1"), "not UTF-8"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{", "not valid JSON"),
    (b'{"format": "pycrl-model", "format_version": "1", "architecture": "crl"}', "format_version"),
    (b'{"format": "pycrl-model", "format_version": [1], "architecture": "crl"}', "format_version"),
    (b'{"format": "pycrl-model", "architecture": {"crl": 1}}', "architecture must be a name"),
], ids=["brackets", "objects", "deep-config", "latin1", "bom16", "truncated", "version-str", "version-list",
        "architecture"])
def test_malformed_model_json_is_a_model_folder_error(copy, data, named):
    _set_json(copy, _nested(200) if data is None else data)
    with pytest.raises(ModelFolderError, match=named) as info:
        ModelCard.read(copy)
    assert "model.json" in str(info.value)
    with pytest.raises(ModelFolderError, match=named):
        open_backend("onnxruntime", copy)


def _damage(folder, name, how):
    path = folder / name
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header-only":
        path.write_bytes(data[:1000])
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "huge-header":
        path.write_bytes((2**63).to_bytes(8, "little") + data[8:])
    elif how == "bad-offsets":
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        name0 = next(k for k in header if k != "__metadata__")
        header[name0]["data_offsets"] = [0, 10**15]
        text = json.dumps(header).encode()
        path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])
    return path


@pytest.mark.parametrize("how", ["truncated", "header-only", "garbage", "empty", "huge-header", "bad-offsets"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_damaged_safetensors_is_a_model_folder_error(copy, how, backend):
    path = _damage(copy, "model.safetensors", how)
    with pytest.raises(ModelFolderError) as info:
        open_backend(backend, copy)
    assert str(path) in str(info.value)


def _consistent_graph(folder, data: bytes):
    """``data`` as the folder's graph with a record that vouches for it: the damage is then
    the graph's own, which only the runtime can find."""
    (folder / "model.onnx").write_bytes(data)
    record = json.loads((folder / "model.onnx.json").read_text())
    record["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "model.onnx.json").write_text(json.dumps(record))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_graph_the_runtime_cannot_load_is_a_model_folder_error(copy, tmp_path, backend, how):
    data = (copy / "model.onnx").read_bytes()
    bad = os.urandom(5000) if how == "garbage" else data[: len(data) // 3]
    _consistent_graph(copy, bad)
    named = "cannot load this graph|not an ONNX model"
    with pytest.raises(ModelFolderError, match=named) as info:
        open_backend(backend, copy)
    assert str(copy / "model.onnx") in str(info.value) and "\n" not in str(info.value)
    bare = tmp_path / "bare.onnx"  # an .onnx given as is
    bare.write_bytes(bad)
    with pytest.raises(ModelFolderError, match=named):
        open_backend(backend, bare)


def test_a_replaced_graph_is_exported_again_with_torch(copy):
    pytest.importorskip("torch")
    original = (copy / "model.onnx").read_bytes()
    assert json.loads((copy / "model.onnx.json").read_text())["sha256"] == hashlib.sha256(original).hexdigest()
    assert not export_onnx(copy).rebuilt  # intact: reused
    (copy / "model.onnx").write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit replaced
    with pytest.warns(RuntimeWarning, match="not the graph exported for this model"):
        again = export_onnx(copy)
    assert again.rebuilt
    rebuilt = (copy / "model.onnx").read_bytes()
    assert json.loads((copy / "model.onnx.json").read_text())["sha256"] == hashlib.sha256(rebuilt).hexdigest()
    assert not export_onnx(copy).rebuilt


NO_TORCH = "import sys; sys.modules['torch'] = None  # an inference-only install\n"


def _run_without_torch(code, tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYCRL_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_without_torch_a_replaced_graph_is_refused(copy, tmp_path):
    intact = tmp_path / "intact"
    shutil.copytree(copy, intact)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 1
    (copy / "model.onnx").write_bytes(bytes(data))
    out = _run_without_torch(f"""
        import warnings
        from pycrl.errors import ModelFolderError
        from pycrl.export import export_onnx
        from pycrl.runtime import open_backend
        warnings.simplefilter("error")
        assert not export_onnx({str(intact)!r}).rebuilt  # verified, no warning
        try:
            open_backend("onnxruntime", {str(copy)!r})
        except ModelFolderError as err:
            print(err)
        """, tmp_path)
    assert "not the graph exported for this model" in out and str(copy / "model.onnx") in out


def test_a_graph_of_another_input_size_is_refused_at_load(copy, tmp_path):
    doc = json.loads((copy / "model.json").read_text())
    doc["input_size"] = [3, 64, 64]
    (copy / "model.json").write_text(json.dumps(doc))
    # Without torch the graph (128 px) cannot be re-exported for the card's 64 px: it is the
    # stale graph or nothing, and the size check refuses it at load, not on every item.
    out = _run_without_torch(f"""
        import warnings
        warnings.simplefilter("ignore")
        from pycrl.errors import ModelFolderError
        from pycrl.runtime import open_backend
        for backend in ("onnxruntime", "openvino"):
            try:
                open_backend(backend, {str(copy)!r})
            except ModelFolderError as err:
                print(backend, err)
        """, tmp_path)
    lines = out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["onnxruntime", "openvino"], out
    for line in lines:
        assert "takes [3, 128, 128] inputs" in line and "declares input_size [3, 64, 64]" in line


def test_the_bundled_record_holds_the_graph_digest():
    record = json.loads((DEFAULT / "model.onnx.json").read_text())
    assert record["sha256"] == hashlib.sha256((DEFAULT / "model.onnx").read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["deep-json", "latin1-json", "garbage-safetensors", "garbage-onnx",
                                    "truncated-onnx", "fifo"])
def test_cli_refuses_a_bad_model_with_one_line_and_exit_1(copy, damage):
    if damage == "deep-json":
        _set_json(copy, b"[" * 100_000)
    elif damage == "latin1-json":
        _set_json(copy, b'{"format": "pycrl-model", "name": "caf\xe9"}')
    elif damage == "garbage-safetensors":
        _damage(copy, "model.safetensors", "garbage")
    elif damage == "garbage-onnx":
        _consistent_graph(copy, os.urandom(5000))
    elif damage == "truncated-onnx":
        _consistent_graph(copy, (copy / "model.onnx").read_bytes()[:3_000_000])
    else:
        (copy / "model.safetensors").unlink()
        os.mkfifo(copy / "model.safetensors")
    out = subprocess.run([sys.executable, "-m", "pycrl.cli", "score", str(SAMPLE), "--model", str(copy),
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("pycrl score: cannot load the model: ModelFolderError: "), lines[0]
    assert str(copy) in lines[0]


def test_good_folders_still_load(copy):
    with pycrl.Detector(copy) as det:
        assert det.backend == "openvino"
    assert isinstance(ModelFolderError("x"), PycrlError)
