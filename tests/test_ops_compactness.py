"""Kernel B (compactness distance) against the torch reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_reference as ref
from pycrl import ops
from pycrl.ops.autograd import compactness_terms, prototype_distance


@st.composite
def problems(draw):
    B = draw(st.integers(1, 6))
    D = draw(st.integers(1, 9))
    spatial = draw(st.none() | st.tuples(st.integers(1, 5), st.integers(1, 5)))
    real = [draw(st.booleans()) for _ in range(B)]
    centre = draw(st.booleans())
    return B, D, spatial, real, centre, draw(st.integers(0, 2**16))


def make(B, D, spatial, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (B, D) if spatial is None else (B, D, *spatial)
    return torch.randn(shape, generator=g, dtype=dtype), torch.randn(D, generator=g, dtype=dtype)


def run_both(feats, is_real, centre):
    out = []
    for fn in (compactness_terms, ref.compactness):
        f = feats.clone().requires_grad_(True)
        sim, diff, cent, normed = fn(f, is_real, centre)
        (0.7 * sim - 1.3 * diff + 0.4 * cent).backward()
        out.append((sim, diff, cent, normed, f.grad))
    return out


@settings(max_examples=80, deadline=None)
@given(problems())
def test_matches_reference(p):
    B, D, spatial, real, use_centre, seed = p
    # float32 runs are compared with the float64 reference on the same values:
    # the kernel accumulates in double, while a float32 reference carries its
    # own rounding (large where a small norm amplifies it).
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        feats, centre = make(B, D, spatial, seed, dtype)
        is_real = torch.tensor(real, dtype=dtype)
        centre = centre if use_centre else None
        k, _ = run_both(feats, is_real, centre)
        _, r = run_both(feats.double(), is_real.double(), None if centre is None else centre.double())
        for a, b in zip(k[:4], r[:4]):
            torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol)
        # Gradients scale with 1 / ||pooled feature||: so does their rounding.
        pooled = feats.double().mean((2, 3)) if spatial else feats.double()
        scale = 1.0 / pooled.norm(dim=1).clamp(min=1e-12).min().item()
        torch.testing.assert_close(k[4].double(), r[4], rtol=tol, atol=tol * max(scale, 1.0))


@pytest.mark.parametrize("spatial", [None, (3, 2)])
def test_gradcheck(spatial):
    feats, centre = make(5, 4, spatial, seed=11)
    feats.requires_grad_(True)
    is_real = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: compactness_terms(f, is_real, centre)[:3], (feats,))


def test_no_real_sample_gives_zero_terms_and_gradients():
    feats, centre = make(4, 8, (2, 2), seed=1)
    feats.requires_grad_(True)
    sim, diff, cent, _ = compactness_terms(feats, torch.zeros(4), centre)
    assert sim.item() == diff.item() == cent.item() == 0.0
    (sim + diff + cent).backward()
    assert feats.grad.abs().max() == 0


def test_single_feature_dimension_and_single_sample():
    sim, diff, cent, normed, _ = ops.compactness(np.array([[2.0], [-3.0], [0.5]]), [1, 0, 1], centre=[1.0])
    np.testing.assert_allclose(normed[:, 0], [1, -1, 1])
    assert sim == 1.0 and diff == 0.0 and cent == 0.0
    one = ops.compactness(np.ones((1, 4, 2, 2), np.float32), [1])
    assert one.sim == 0 and one.diff == 0  # no pair exists


def test_empty_batch():
    out = ops.compactness(np.zeros((0, 5), np.float32), np.zeros(0))
    assert out.normed.shape == (0, 5) and out.sim == 0
    grad = ops.compactness_grad((0, 5, 2, 2), np.zeros(0), out.normed, out.norms, np.ones(3, np.float32))
    assert grad.shape == (0, 5, 2, 2)


def test_zero_feature_vector_is_handled_like_torch_normalize():
    feats = torch.zeros(3, 4, dtype=torch.float64)
    feats[1] = torch.arange(4.0)
    k, r = run_both(feats, torch.tensor([1.0, 1.0, 0.0]), None)
    for a, b in zip(k, r):
        torch.testing.assert_close(a, b)


def test_prototype_distance_matches_reference():
    feats, _ = make(6, 16, (4, 4), seed=2)
    protos = torch.randn(5, 16, dtype=torch.float64)
    dist, index = prototype_distance(feats, protos)
    f = torch.nn.functional.normalize(feats.mean((2, 3)), dim=1)
    p = torch.nn.functional.normalize(protos, dim=1)
    d2 = torch.cdist(f, p) ** 2
    torch.testing.assert_close(dist, d2.min(1).values)
    assert torch.equal(index, d2.argmin(1))
    assert index.dtype == torch.int64


def test_cuda_matches_cpu(cuda_device):
    feats, centre = make(8, 32, (4, 4), seed=3, dtype=torch.float32)
    is_real = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1], dtype=torch.float32)
    res = {}
    for dev in ("cpu", cuda_device):
        f = feats.to(dev).requires_grad_(True)
        sim, diff, cent, normed = compactness_terms(f, is_real.to(dev), centre.to(dev))
        (sim - diff + cent).backward()
        res[str(dev)] = [t.detach().cpu() for t in (sim, diff, cent, normed, f.grad)]
    for a, b in zip(res["cpu"], res["cuda"]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
