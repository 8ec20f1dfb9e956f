"""Kernel A (multi-view reconstruction difference) against the torch reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_reference as ref
from pycrl import _C, ops
from pycrl.ops.autograd import multiview_recon_diff


@st.composite
def problems(draw):
    B = draw(st.integers(1, 3))
    C = draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    V = draw(st.integers(1, 4))
    sizes = [(draw(st.integers(1, H)), draw(st.integers(1, W))) for _ in range(V)]
    weights = [draw(st.floats(0.1, 2.0)) for _ in range(V)]
    mask = [float(draw(st.integers(0, 1))) for _ in range(B)]
    pool = draw(st.none() | st.tuples(st.integers(1, H), st.integers(1, W)))
    align = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return B, C, H, W, sizes, weights, mask, pool, align, seed


def make(B, C, H, W, sizes, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, C, H, W, generator=g, dtype=dtype) * 2 - 1
    views = [torch.rand(B, C, h, w, generator=g, dtype=dtype) * 2 - 1 for h, w in sizes]
    return x, views


def run_both(x, views, weights, mask, pool, align):
    """Outputs and gradients (to x and views) of kernel and reference under the same random upstream."""
    results = []
    for fn in ("kernel", "reference"):
        xs = x.clone().requires_grad_(True)
        vs = [v.clone().requires_grad_(True) for v in views]
        m = torch.tensor(mask, dtype=x.dtype)
        if fn == "kernel":
            out = multiview_recon_diff(xs, vs, m, weights, pool, align)
            loss, per, pooled = out.loss, out.per_sample, None if out.diff_map is None else out.diff_map[:, 0]
        else:
            loss, per, pooled = ref.recon_diff(xs, vs, weights, m, pool, align)
        g = torch.Generator().manual_seed(7)
        total = loss * 1.7 + (per * torch.rand(per.shape, generator=g, dtype=x.dtype)).sum()
        if pooled is not None:
            total = total + (pooled * torch.rand(pooled.shape, generator=g, dtype=x.dtype)).sum()
        total.backward()
        results.append((loss, per, pooled, xs.grad, [v.grad for v in vs]))
    return results


def check_against_reference(p, dtype, out_tol, grad_tol):
    B, C, H, W, sizes, weights, mask, pool, align, seed = p
    x, views = make(B, C, H, W, sizes, seed, dtype)
    (k, r) = run_both(x, views, weights, mask, pool, align)
    for a, b in zip(k[:3], r[:3]):
        if b is not None:
            torch.testing.assert_close(a, b, **out_tol)
    for a, b in zip([k[3], *k[4]], [r[3], *r[4]]):  # gradients to x and to every view
        torch.testing.assert_close(a, b, **grad_tol)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_matches_reference_float64(p):
    check_against_reference(p, torch.float64, dict(rtol=1e-10, atol=1e-12), dict(rtol=1e-9, atol=1e-12))


@settings(max_examples=20, deadline=None)
@given(problems())
def test_matches_reference_float32(p):
    check_against_reference(p, torch.float32, dict(rtol=1e-5, atol=1e-6), dict(rtol=1e-4, atol=1e-6))


def test_the_256_protocol_shapes():
    # The CRL views: 1/4, 1/2 and full resolution of a 3x64x64 input.
    x, views = make(2, 3, 64, 64, [(16, 16), (32, 32), (64, 64)], seed=3, dtype=torch.float32)
    (k, r) = run_both(x, views, [1.0, 1.0, 1.0], [1.0, 0.0], (8, 8), False)
    torch.testing.assert_close(k[0], r[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k[2], r[2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k[3], r[3], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("align", [False, True])
def test_gradcheck(align):
    x, views = make(2, 2, 7, 9, [(3, 4), (7, 9), (1, 1)], seed=1)
    x.requires_grad_(True)
    for v in views:
        v.requires_grad_(True)
    mask = torch.tensor([1.0, 0.0], dtype=torch.float64)

    def f(x, *views):
        return tuple(multiview_recon_diff(x, views, mask, [1.0, 0.5, 2.0], (3, 2), align))

    assert torch.autograd.gradcheck(f, (x, *views))


def test_no_real_sample_gives_zero_loss_and_gradients():
    x, views = make(3, 3, 8, 8, [(4, 4), (8, 8)], seed=2)
    x.requires_grad_(True)
    views = [v.requires_grad_(True) for v in views]
    out = multiview_recon_diff(x, views, torch.zeros(3, dtype=torch.float64))
    assert out.loss.item() == 0.0
    assert (out.per_sample > 0).all()  # per-sample differences are still reported
    out.loss.backward()
    assert x.grad.abs().max() == 0 and all(v.grad.abs().max() == 0 for v in views)


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    out = ops.recon_diff(x, [np.zeros((0, 3, 4, 4), np.float32)], pool=2)
    assert out.loss == 0 and out.per_sample.shape == (0,) and out.pooled.shape == (0, 2, 2)
    gx, (gv,) = ops.recon_diff_grad(x, [np.zeros((0, 3, 4, 4), np.float32)], grad_loss=np.float32(1))
    assert gx.shape == x.shape and gv.shape == (0, 3, 4, 4)


def test_numpy_and_torch_agree_and_read_only_input_works():
    x, views = make(2, 3, 10, 10, [(5, 5)], seed=4, dtype=torch.float32)
    xn = x.numpy().copy()
    xn.setflags(write=False)  # numpy cannot export read-only arrays by DLPack
    a = ops.recon_diff(xn, [views[0].numpy()], pool=(5, 5))
    b = ops.recon_diff(x, views, pool=(5, 5))
    assert isinstance(a.pooled, np.ndarray) and isinstance(b.pooled, torch.Tensor)
    np.testing.assert_array_equal(a.pooled, b.pooled.numpy())
    np.testing.assert_array_equal(a.per_sample, b.per_sample.numpy())


def test_result_does_not_depend_on_thread_count():
    x, views = make(4, 3, 32, 32, [(8, 8), (16, 16)], seed=5, dtype=torch.float32)
    results = []
    for n in (1, 2, 3):
        _C.set_num_threads(n)
        try:
            out = ops.recon_diff(x.numpy(), [v.numpy() for v in views], pool=4)
            gx, gv = ops.recon_diff_grad(x.numpy(), [v.numpy() for v in views], grad_loss=np.float32(1))
        finally:
            _C.set_num_threads(0)
        results.append((out.per_sample, out.pooled, gx, *gv))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_heatmap_highlights_the_badly_reconstructed_region():
    x = np.zeros((1, 3, 32, 32), np.float32)
    recon = x.copy()
    recon[..., 8:16, 16:24] = 1.0  # a wrong patch
    pooled = ops.recon_diff(x, [recon], pool=4).pooled[0]
    assert np.unravel_index(pooled.argmax(), pooled.shape) == (1, 2)
    assert pooled.sum() == pytest.approx(pooled[1, 2])


def test_cuda_matches_cpu(cuda_device):
    x, views = make(3, 3, 32, 32, [(8, 8), (16, 16), (32, 32)], seed=6, dtype=torch.float32)
    for dev in ("cpu", cuda_device):
        xs = x.to(dev).requires_grad_(True)
        vs = [v.to(dev).requires_grad_(True) for v in views]
        out = multiview_recon_diff(xs, vs, torch.tensor([1.0, 0.0, 1.0], device=dev), pool=4)
        (out.loss + out.diff_map.sum()).backward()
        if dev == "cpu":
            want = (out.loss, out.diff_map, xs.grad, *[v.grad for v in vs])
        else:
            got = (out.loss, out.diff_map, xs.grad, *[v.grad for v in vs])
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-6)
