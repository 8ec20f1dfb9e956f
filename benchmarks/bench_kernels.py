"""Fused kernels vs the plain torch reference, forward + backward, same inputs.

Each step returns the gradients with torch.autograd.grad, so both sides are
timed producing exactly what they hand to the layers below (the reference a
materialised tensor, the fused compactness kernel a broadcast view of the
pooled gradient), without the copy a leaf's .grad accumulation would add.

Run: pytest benchmarks/bench_kernels.py --benchmark-enable
Sizes follow the training setting: batch 32, 3x256x256 input, CRL's views at
64/128/256 px; the compactness loss on RECCE's three layers.
"""

import pytest
import torch

import torch_reference as ref
from memory import peak_extra_mb
from pycrl.ops.autograd import compactness_terms, multiview_recon_diff

B = 32
VIEWS = (64, 128, 256)
LAYERS = ((728, 16), (256, 32), (128, 64))


def recon_setup():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, 3, 256, 256, generator=g) * 2 - 1
    views = [(torch.rand(B, 3, s, s, generator=g) * 2 - 1).requires_grad_(True) for s in VIEWS]
    is_real = (torch.arange(B) % 2 == 0).float()
    return x, views, is_real


def recon_fused(state):
    x, views, is_real = state
    return torch.autograd.grad(multiview_recon_diff(x, views, is_real).loss, views)


def recon_torch(state):
    x, views, is_real = state
    return torch.autograd.grad(ref.recon_diff(x, views, None, is_real)[0], views)


def compact_setup():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(B, d, s, s, generator=g).requires_grad_(True) for d, s in LAYERS]
    centres = [torch.randn(d, generator=g) for d, _ in LAYERS]
    is_real = (torch.arange(B) % 2 == 0).float()
    return feats, centres, is_real


def _compact(state, fn):
    feats, centres, is_real = state
    total = 0
    for f, c in zip(feats, centres):
        sim, diff, centroid, _ = fn(f, is_real, c)
        total = total + torch.relu(1 - sim + diff) + centroid
    return torch.autograd.grad(total, feats)


def compact_fused(state):
    _compact(state, compactness_terms)


def compact_torch(state):
    _compact(state, ref.compactness)


def _bench(benchmark, setup, step):
    """Peak extra memory of one step in a fresh process, then the timed rounds."""
    benchmark.extra_info["peak_extra_mb"] = peak_extra_mb(__name__, setup.__name__, step.__name__)
    benchmark.pedantic(step, args=(setup(),), rounds=10, warmup_rounds=1)


@pytest.mark.benchmark(group="kernel A: multi-view reconstruction difference (fwd+bwd)")
@pytest.mark.parametrize("impl", ["fused", "torch"])
def test_recon_diff(benchmark, impl):
    _bench(benchmark, recon_setup, recon_fused if impl == "fused" else recon_torch)


@pytest.mark.benchmark(group="kernel B: compactness distance, 3 layers (fwd+bwd)")
@pytest.mark.parametrize("impl", ["fused", "torch"])
def test_compactness(benchmark, impl):
    _bench(benchmark, compact_setup, compact_fused if impl == "fused" else compact_torch)
