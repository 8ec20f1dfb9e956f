"""ONNX export of every registered detector, checked by onnx.checker and run
in ONNX Runtime against eager torch; the content-keyed ONNX cache."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from pycrl import weights
from pycrl.models import Detector, list_models
from pycrl.export import OUTPUT_NAMES, export_onnx
from pycrl.runtime import open_backend
from test_runtime_common import (SIZE, assert_outputs_close, batch, calibrate_batchnorm,  # noqa: F401
                                 one_torch_thread, private_cache, saved_detector)

onnx = pytest.importorskip("onnx", reason="package onnx not installed: export untested")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed: exported graphs not run")

# Small configs where a detector has them; a detector registered later runs
# with its defaults at 64 px.
CONFIGS = {"classifier": {"backbone": "tiny"}}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", list_models())
def test_export_checks_and_matches_torch_at_two_batch_sizes(tmp_path, name):
    folder = saved_detector(tmp_path / name, name, **CONFIGS.get(name, {}))
    exported = export_onnx(folder)
    assert exported.path == folder / "model.onnx" and exported.rebuilt

    proto = onnx.load(str(exported.path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    assert _dims(proto.graph.input[0]) == ["batch", 3, SIZE, SIZE]
    outputs = {o.name: _dims(o) for o in proto.graph.output}
    assert list(outputs) == list(exported.outputs)
    assert set(outputs) >= {"prob", "logits", "feat"} and set(outputs) <= set(OUTPUT_NAMES)
    for key, dims in outputs.items():  # static shapes except the batch
        assert dims[0] == "batch" and all(isinstance(d, int) and d > 0 for d in dims[1:]), key
    assert outputs["prob"] == ["batch"] and outputs["logits"] == ["batch", 2]
    assert len(outputs["feat"]) == 2
    if "recon" in outputs:
        assert outputs["recon"] == ["batch", 3, SIZE, SIZE]

    with open_backend("torch", folder) as ref, open_backend("onnxruntime", folder, threads=1) as ort:
        assert ort.output_names == ref.output_names == exported.outputs
        for n in (1, 3):
            x = batch(n)
            expected = ref.run(x)
            assert_outputs_close(ort.run(x), expected, 1e-4, f"{name} batch {n}")
        assert np.ptp(expected["prob"]) > 1e-3  # the score depends on the input


class TinyAutoencoderDetector(Detector):
    """An unregistered detector with a decoder its score does not use."""

    def __init__(self, serve_recon: bool):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2.0), nn.Conv2d(8, 3, 3, 1, 1))
        self.head = nn.Linear(8, 2)
        if not serve_recon:
            self.export_outputs = ("prob", "logits", "feat")

    def forward(self, x):
        feat = self.encoder(x)
        cls = self.head(feat.mean(dim=(2, 3)))
        return {"cls": cls, "prob": self.probability(cls), "feat": feat,
                "recon": self.decoder(feat)}


@pytest.mark.parametrize("serve_recon", [True, False])
def test_export_outputs_drop_unused_decoder(tmp_path, serve_recon):
    model = TinyAutoencoderDetector(serve_recon).eval()
    exported = export_onnx(model, tmp_path / "m.onnx", input_size=(3, 32, 32))
    proto = onnx.load(str(exported.path))
    names = [o.name for o in proto.graph.output]
    initialisers = " ".join(i.name for i in proto.graph.initializer)
    if serve_recon:
        assert names == ["prob", "logits", "feat", "recon"] and "decoder" in initialisers
    else:  # nothing left of the decoder in the graph
        assert names == ["prob", "logits", "feat"] and "decoder" not in initialisers
    assert _dims(proto.graph.output[2]) == ["batch", 8]  # feature map served pooled

    with pytest.raises(ValueError, match="prob"):
        export_onnx(model, tmp_path / "x.onnx", input_size=(3, 32, 32), outputs=("feat",))


def test_static_batch_export_pads_short_batches(tmp_path):
    folder = saved_detector(tmp_path / "m", "classifier", backbone="tiny")
    static = export_onnx(folder, tmp_path / "static.onnx", batch_dynamic=False)
    assert _dims(onnx.load(str(static.path)).graph.input[0])[0] == 1
    x = batch(3)
    with open_backend("onnxruntime", static, threads=1) as fixed, \
            open_backend("torch", folder) as ref:
        assert fixed.fixed_batch == 1
        assert_outputs_close(fixed.run(x), ref.run(x), 1e-4, "static batch")


def test_cache_reused_while_weights_unchanged_and_rebuilt_when_they_change(tmp_path):
    folder = saved_detector(tmp_path / "m", "classifier", backbone="tiny")
    first = export_onnx(folder)
    stamp = os.stat(first.path).st_mtime_ns
    record = json.loads((folder / "model.onnx.json").read_text())
    assert record["key"] == first.key and record["outputs"] == list(first.outputs)

    again = export_onnx(folder)
    assert not again.rebuilt and again.key == first.key
    assert os.stat(again.path).st_mtime_ns == stamp

    # Re-saving identical weights (new provenance timestamp) keeps the key.
    model = weights.load(folder)
    weights.save(model, folder, {"input_size": [3, SIZE, SIZE]})
    assert not export_onnx(folder).rebuilt

    # New weights: a new key, a new graph, and backends serve the new model.
    with torch.no_grad():
        model.head.bias.add_(1.0)
    weights.save(model, folder, {"input_size": [3, SIZE, SIZE]})
    changed = export_onnx(folder)
    assert changed.rebuilt and changed.key != first.key
    x = batch(2)
    with open_backend("onnxruntime", folder, threads=1) as ort, open_backend("torch", folder) as ref:
        assert_outputs_close(ort.run(x), ref.run(x), 1e-4, "after a weight change")

    # Export options are part of the key too.
    assert export_onnx(folder, opset=18).key != changed.key
    assert export_onnx(folder).key == changed.key


def test_in_memory_module_gets_the_same_key_as_its_folder(tmp_path):
    folder = saved_detector(tmp_path / "m", "classifier", backbone="tiny")
    from_folder = export_onnx(folder)
    from_module = export_onnx(weights.load(folder))  # lands in the private cache
    assert from_module.key == from_folder.key
    assert from_module.path != from_folder.path and from_module.rebuilt


def test_fresh_folder_runs_without_importing_torch(tmp_path):
    folder = saved_detector(tmp_path / "m", "classifier", backbone="tiny")
    export_onnx(folder)
    script = (
        "import sys, numpy as np\n"
        "from pycrl.runtime import open_backend\n"
        f"net = open_backend('onnxruntime', {str(folder)!r}, threads=1)\n"
        f"out = net.run(np.zeros((2, 3, {SIZE}, {SIZE}), np.float32))\n"
        "assert out['prob'].shape == (2,)\n"
        "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYCRL_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_export_key_covers_the_architecture_source_only(tmp_path, monkeypatch):
    """A model's cached (or shipped) graph stays valid when another detector's file changes
    or only its own comments and docstrings do, and is rebuilt when its own code, a file it
    imports, its named backbone or the tracing code changes."""
    import shutil

    from pycrl.export import digest
    from pycrl.export.sources import TRACING_SOURCES

    package = tmp_path / "pycrl"
    shutil.copytree(digest._PACKAGE / "models", package / "models")
    for rel in TRACING_SOURCES:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(digest._PACKAGE / rel, package / rel)
    monkeypatch.setattr(digest, "_PACKAGE", package)

    def keys():
        return (digest.code_digest("crl", {"encoder": "efficientnet_lite0"}),
                digest.code_digest("classifier", {"backbone": "clip_vit"}))

    def edit(rel, code="\nEDITED = 1\n"):
        with open(package / rel, "a", encoding="utf-8") as f:
            f.write(code)

    crl, classifier = keys()
    source = package / "models" / "crl.py"
    text = source.read_text(encoding="utf-8")
    assert text.startswith('"""')
    source.write_text('"""Reworded.' + text[3:], encoding="utf-8")
    edit("models/crl.py", "\n# a comment\n")
    assert keys() == (crl, classifier)
    edit("models/crl.py", "\n\ndef f():\n    'a docstring'\n    return 1\n")
    assert keys()[0] != crl  # f is code
    crl = keys()[0]
    edit("models/exposing.py")
    assert keys() == (crl, classifier)
    edit("models/vit.py")  # the classifier's named backbone, not used by CRL
    new_crl, new_classifier = keys()
    assert new_crl == crl and new_classifier != classifier
    edit("models/xception.py")  # imported by crl.py (and recce.py)
    assert keys()[0] != crl
    crl = keys()[0]
    edit("models/efficientnet.py")  # CRL's Lite0 encoder
    assert keys()[0] != crl
    edit("models/base.py")  # imported by every model file
    assert keys()[1] != new_classifier
    before = keys()
    edit("export/onnx_trace.py")  # traces every graph
    assert all(a != b for a, b in zip(keys(), before))


def test_bundled_default_graph_is_current(tmp_path):
    """The shipped default model's ONNX must match the code that would export it, or an
    inference-only install (no torch) runs a stale graph. Editing the code of the CRL model (or
    of a file pycrl/export/sources.py declares for it, e.g. models/base.py, or the tracing code)
    needs a re-export; comments and docstrings do not: ``python -c "from pycrl.export import
    export_onnx; export_onnx('pycrl/assets/default')"``."""
    import shutil

    from pycrl.model_folder import NAMED_MODELS

    copy = tmp_path / "default"
    shutil.copytree(NAMED_MODELS["default"], copy, ignore=shutil.ignore_patterns("openvino"))
    assert not export_onnx(copy).rebuilt, "pycrl/assets/default/model.onnx is stale: re-export it (see docstring)"
