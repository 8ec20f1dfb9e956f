"""The loss terms the recipes are assembled from.

Reconstruction and similarity maths run in the fused kernels (pycrl.ops.autograd);
the terms are computed in float32 whatever autocast chose for the network, because the
kernels take float32/float64 and these are small reductions where precision matters.
Every term that is about real samples is exactly 0, with zero gradients, for a batch
without the reals it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pycrl.ops.autograd import compactness_terms, multiview_recon_diff


def classification(cls: torch.Tensor, labels: torch.Tensor, flood: float = 0.0) -> torch.Tensor:
    """CE over 2 logits (DeepfakeBench) or BCE over 1 logit (RECCE paper); label 1 = fake.

    ``flood`` b > 0 applies flooding (Ishida et al. 2020), ``|L - b| + b``: below b the
    gradient reverses, so the training loss hovers around b instead of reaching 0.
    """
    cls = cls.float()
    if cls.shape[1] == 1:
        loss = F.binary_cross_entropy_with_logits(cls[:, 0], labels.to(cls.dtype))
    else:
        loss = F.cross_entropy(cls, labels.long())
    return (loss - flood).abs() + flood if flood > 0 else loss


def reconstruction(images: torch.Tensor, views: Sequence[torch.Tensor], is_real: torch.Tensor,
                   weights: Sequence[float] | None = None, align_corners: bool = False) -> torch.Tensor:
    """``sum_v w_v * mean_{real i} mean|up(view_v,i) - x_i|`` (kernel A); 0 without reals."""
    views = [v.float().contiguous() for v in views]
    return multiview_recon_diff(images.detach().float().contiguous(), views, is_real,
                                weights, None, align_corners).loss


def _layer_weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"layer_weights: expected {n} weights (one per feature layer), got {len(weights)}")
    return [float(w) for w in weights]


def margin_metric(feats: Sequence[torch.Tensor], is_real: torch.Tensor, margin: float = 1.0,
                  layer_weights: Sequence[float] | None = None) -> torch.Tensor:
    """RECCE's metric loss: ``sum_layers w * max(0, margin - sim + diff)`` (kernel B).

    sim: mean similarity (cos+1)/2 of distinct real-real pairs (0 with one real, as in
    RECCE); diff: of real-fake pairs. 0 for a batch without reals (RECCE would give a
    constant 1 there).
    """
    gate = is_real.any().to(is_real.dtype)
    total = is_real.new_zeros(())
    for w, f in zip(_layer_weights(len(feats), layer_weights), feats):
        t = compactness_terms(f.float(), is_real)
        total = total + w * torch.clamp_min(margin - t.sim + t.diff, 0.0)
    return total * gate


def pairwise_pull(feats: Sequence[torch.Tensor], is_real: torch.Tensor,
                  layer_weights: Sequence[float] | None = None) -> torch.Tensor:
    """``sum_layers w * (1 - sim)``: pull every pair of reals together; 0 with fewer than 2 reals."""
    gate = (is_real.sum() >= 2).to(is_real.dtype)
    total = is_real.new_zeros(())
    for w, f in zip(_layer_weights(len(feats), layer_weights), feats):
        total = total + w * (1.0 - compactness_terms(f.float(), is_real).sim)
    return total * gate


def centroid_pull(feat: torch.Tensor, is_real: torch.Tensor, centre: torch.Tensor | None):
    """(``mean_{real i} ||f_i - c/||c|| ||^2`` on L2-normalised pooled features, normalised
    embeddings (detached)). The centre is a constant; None or a zero centre gives 0."""
    if centre is not None:
        # a copy: the kernel keeps the centre for backward, and the caller may update
        # the buffer in place before backward runs
        centre = centre.detach().clone() if bool(centre.any()) else None
    t = compactness_terms(feat.float(), is_real, centre)
    return t.centroid, t.normed
