"""Every detector exports to ONNX (opset 17, dynamic batch) and, where
onnxruntime is installed, the exported graph reproduces torch at two batch sizes."""

import io
import math
import warnings

import numpy as np
import pytest
import torch

from pycrl.models import create_model
from pycrl.export.inference_outputs import inference_outputs
from test_models_common import _one_thread  # noqa: F401  (autouse fixture)

onnx = pytest.importorskip("onnx", reason="package onnx not installed: ONNX export untested")

CASES = [  # name, cfg, served outputs, input size, weight gain that keeps signals alive
    ("xception", {}, ("prob", "logits", "feat"), 48, 1.0),
    ("efficientnetb4", {}, ("prob", "logits"), 48, 1.48),
    ("recce", {}, ("prob", "logits", "feat", "recon"), 48, 1.0),
    ("classifier", {"backbone": "efficientnet_lite0"}, ("prob", "logits"), 48, 1.4),
]


def lively_init(model: torch.nn.Module, gain: float) -> None:
    """Variance-preserving weights and non-trivial BN statistics, so the
    comparison below is made on outputs that depend on the input.

    torch's default conv/linear init is uniform with std 1/sqrt(3 fan_in);
    scaling by gain*sqrt(3) gives std gain/sqrt(fan_in) without redrawing.
    """
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(gain * math.sqrt(3.0))
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(1 + 0.1 * torch.rand(m.num_features, generator=gen))


@pytest.mark.parametrize("name,cfg,outputs,size,gain", CASES, ids=[c[0] for c in CASES])
def test_onnx_export_dynamic_batch(name, cfg, outputs, size, gain):
    torch.manual_seed(0)
    model = create_model(name, **cfg).eval()
    lively_init(model, gain)
    wrapped = inference_outputs(model, (3, size, size), outputs)  # what every backend serves
    assert wrapped.outputs == outputs
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            wrapped, (torch.zeros(2, 3, size, size),), buf, opset_version=17, dynamo=False,
            input_names=["image"], output_names=list(outputs),
            dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in outputs}})
    assert not model.training  # export must not leave the model in train mode
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Loop", "If", "Scan"}, ops  # no control flow (vectorised reasoning)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"
    static = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert static == [3, size, size]

    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: graph not run")
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    x = torch.rand(3, 3, size, size) * 2 - 1
    with torch.no_grad():  # eval mode: samples are independent, so batch 1 = row 0
        expected = [e.numpy() for e in wrapped(x)]
    assert np.ptp(expected[outputs.index("prob")]) > 1e-4  # prob varies with the input
    for batch in (3, 1):  # neither is the traced batch size (2)
        got = session.run(None, {"image": x[:batch].numpy()})
        for key, e, g in zip(outputs, expected, got):
            e = e[:batch]
            assert g.shape == e.shape, key
            np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(e).max()),
                                       err_msg=key)
