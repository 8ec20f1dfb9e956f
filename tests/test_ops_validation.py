"""Bad arguments raise TypeError/ValueError naming the argument; they never crash."""

import numpy as np
import pytest
import torch

from pycrl import _C, ops

X = np.zeros((2, 3, 16, 16), np.float32)
V = [np.zeros((2, 3, 8, 8), np.float32)]


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: ops.recon_diff(X[0], V), ValueError, "x: expected shape (B, C, H, W)"),
        (lambda: ops.recon_diff(X, [V[0][0]]), ValueError, "views[0]: expected shape (B, C, h, w)"),
        (lambda: ops.recon_diff(X, [V[0].astype(np.float64)]), TypeError, "views[0]: expected float32"),
        (lambda: ops.recon_diff(X.astype(np.int32), V), TypeError, "x: expected float32 or float64"),
        (lambda: ops.recon_diff(X.astype(np.float16), V), TypeError, "x: expected float32 or float64"),
        (lambda: ops.recon_diff(X[:, :, ::2], V), ValueError, "x: expected C-contiguous"),
        (lambda: ops.recon_diff(X, [V[0].transpose(0, 1, 3, 2)]), ValueError, "views[0]: expected C-contiguous"),
        (lambda: ops.recon_diff(X, [np.zeros((3, 3, 8, 8), np.float32)]), ValueError, "views[0]: expected batch"),
        (lambda: ops.recon_diff(X, [np.zeros((2, 1, 8, 8), np.float32)]), ValueError, "views[0]: expected batch"),
        (lambda: ops.recon_diff(X, [np.zeros((2, 3, 32, 8), np.float32)]), ValueError, "views[0]: expected a resolution"),
        (lambda: ops.recon_diff(X, []), ValueError, "views: expected 1 to 8"),
        (lambda: ops.recon_diff(X, V * 9), ValueError, "views: expected 1 to 8"),
        (lambda: ops.recon_diff(X, V, weights=[1, 2]), ValueError, "weights: expected one weight per view"),
        (lambda: ops.recon_diff(X, V, mask=[1, 0, 1]), ValueError, "mask: expected shape (2,)"),
        (lambda: ops.recon_diff(X, V, pool=0), ValueError, "pool: expected a positive int"),
        (lambda: ops.recon_diff(X, V, pool=(32, 4)), ValueError, "pooled: expected (B, Ph, Pw)"),
        (lambda: ops.recon_diff(X.tolist(), V), TypeError, "x: expected an array"),
        (lambda: ops.recon_diff(X, V[0]), TypeError, "views: expected a list or tuple"),
        (lambda: ops.recon_diff(X, ["abc"]), TypeError, "views[0]: expected an array"),
        (lambda: ops.recon_diff(X, V, mask="abc"), TypeError, "mask: expected numbers"),
        (lambda: ops.compactness(np.zeros((2, 3, 4)), [1, 0]), ValueError, "features: expected shape (B, D) or"),
        (lambda: ops.compactness(np.zeros((2, 0)), [1, 0]), ValueError, "features: expected D >= 1"),
        (lambda: ops.compactness(np.zeros((2, 3)), [1, 0, 1]), ValueError, "is_real: expected shape (2,)"),
        (lambda: ops.compactness(np.zeros((2, 3)), [1, 0], centre=[1, 2]), ValueError, "centre: expected shape (3,)"),
        (lambda: ops.compactness(np.zeros((2, 3, 2, 2))[..., ::2], [1, 0]), ValueError, "features: expected C-contig"),
        (lambda: ops.compactness(np.zeros((2, 3), np.int64), [1, 0]), TypeError, "features: expected float32"),
        (lambda: ops.prototype_distance(np.zeros((2, 3)), np.zeros((0, 3))), ValueError, "at least one prototype"),
        (lambda: ops.prototype_distance(np.zeros((2, 3)), np.zeros((4, 5))), ValueError, "prototypes: expected D = 3"),
        (lambda: ops.prototype_distance(np.zeros((2, 3)), np.zeros((4, 3), np.float32)), TypeError, "prototypes: expected float64"),
    ],
)
def test_bad_arguments(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_raw_extension_checks_outputs_too():
    ps, loss = np.empty(2, np.float32), np.empty((), np.float32)
    mask = np.ones(2, np.float32)
    with pytest.raises(ValueError, match="per_sample: expected shape"):
        _C.recon_diff_forward(X, V, [1.0], mask, np.empty(3, np.float32), loss)
    with pytest.raises(TypeError, match="loss: expected float32"):
        _C.recon_diff_forward(X, V, [1.0], mask, ps, np.empty((), np.float64))
    ro = np.empty(2, np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="per_sample"):
        _C.recon_diff_forward(X, V, [1.0], mask, ro, loss)
    with pytest.raises(TypeError, match="x: expected an array.*got None"):
        _C.recon_diff_forward(None, V, [1.0], mask, ps, loss)
    with pytest.raises(ValueError, match="index"):
        _C.prototype_distance(np.zeros((2, 3)), np.ones((1, 3)), np.empty(2), np.empty(3, np.int64))


def test_tensors_that_require_grad_are_refused_with_a_clear_message():
    x = torch.zeros(2, 3, 16, 16, requires_grad=True)
    with pytest.raises(ValueError, match="x: cannot be shared without a copy"):
        ops.recon_diff(x, [torch.zeros(2, 3, 8, 8)])


def test_buffer_protocol_objects_are_accepted():
    x = memoryview(np.ones((1, 2, 4, 4), np.float32))
    out = ops.recon_diff(x, [np.zeros((1, 2, 2, 2), np.float32)])
    assert float(out.loss) == pytest.approx(1.0)
