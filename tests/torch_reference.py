"""Plain torch definitions of the fused kernels' maths: the reference the
kernels are tested and benchmarked against. Deliberately naive: every view is
upsampled and kept, the similarity matrix is formed in full."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def recon_diff(x, views, weights=None, mask=None, pool=None, align_corners=False):
    weights = weights or [1.0] * len(views)
    mask = torch.ones(x.shape[0], dtype=x.dtype) if mask is None else mask
    size = tuple(x.shape[-2:])
    D = sum(
        w * (F.interpolate(r, size=size, mode="bilinear", align_corners=align_corners) - x).abs().mean(1)
        for w, r in zip(weights, views)
    )
    per_sample = D.flatten(1).mean(1)
    loss = (mask * per_sample).sum() / mask.sum().clamp(min=1)
    pooled = F.adaptive_avg_pool2d(D[:, None], pool)[:, 0] if pool is not None else None
    return loss, per_sample, pooled


def compactness(features, is_real, centre=None):
    g = features.mean((2, 3)) if features.dim() == 4 else features
    f = F.normalize(g, dim=1)
    S = (f @ f.T + 1) / 2
    real = is_real > 0.5
    eye = torch.eye(len(f), dtype=torch.bool)
    rr = real[:, None] & real[None, :] & ~eye
    rf = real[:, None] & ~real[None, :]
    zero = S.sum() * 0  # keeps the graph so empty terms still have (zero) gradients
    sim = S[rr].mean() if rr.any() else zero
    diff = S[rf].mean() if rf.any() else zero
    if centre is not None and real.any():
        centroid = ((f[real] - F.normalize(centre, dim=0)) ** 2).sum(1).mean()
    else:
        centroid = zero
    return sim, diff, centroid, f
