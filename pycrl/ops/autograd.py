"""torch.autograd wrappers of the fused kernels (needs torch: the [train] extra).

The losses use these; gradients come from the kernels' own backward passes,
so no per-view upsampled tensor is ever stored for autograd.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from pycrl import ops

__all__ = ["ReconDiffOutput", "CompactnessOutput", "multiview_recon_diff", "compactness_terms", "prototype_distance"]


class ReconDiffOutput(NamedTuple):
    loss: torch.Tensor  # masked mean over samples (0-d)
    per_sample: torch.Tensor  # (B,)
    diff_map: torch.Tensor | None  # (B, 1, Ph, Pw) pooled difference map, when requested


class CompactnessOutput(NamedTuple):
    sim: torch.Tensor  # mean similarity of real-real pairs (0-d)
    diff: torch.Tensor  # mean similarity of real-fake pairs (0-d)
    centroid: torch.Tensor  # mean squared distance of reals to the unit centre (0-d)
    normed: torch.Tensor  # (B, D) normalised embeddings, detached


class _ReconDiff(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask, weights, pool, align_corners, *views):
        out = ops.recon_diff(x.detach(), [v.detach() for v in views], weights, mask, pool, align_corners)
        ctx.save_for_backward(x, mask, *views)
        ctx.weights, ctx.align_corners = weights, align_corners
        ctx.set_materialize_grads(False)
        pooled = out.pooled if out.pooled is not None else x.new_empty(0)
        if out.pooled is None:
            ctx.mark_non_differentiable(pooled)
        return out.loss, out.per_sample, pooled

    @staticmethod
    def backward(ctx, g_loss, g_per_sample, g_pooled):
        x, mask, *views = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        need_views = list(ctx.needs_input_grad[5:])
        if g_pooled is not None and g_pooled.numel() == 0:
            g_pooled = None
        if not (need_x or any(need_views)) or (g_loss is None and g_per_sample is None and g_pooled is None):
            return (None,) * (5 + len(views))
        gx, gv = ops.recon_diff_grad(
            x.detach(),
            [v.detach() for v in views],
            ctx.weights,
            mask,
            grad_loss=None if g_loss is None else g_loss.contiguous(),
            grad_per_sample=None if g_per_sample is None else g_per_sample.contiguous(),
            grad_pooled=None if g_pooled is None else g_pooled.contiguous(),
            align_corners=ctx.align_corners,
            need_x=need_x,
            need_views=need_views,
        )
        return (gx, None, None, None, None, *gv)


def multiview_recon_diff(
    x: torch.Tensor,
    views: Sequence[torch.Tensor],
    is_real: torch.Tensor | None = None,
    weights: Sequence[float] | None = None,
    pool: int | tuple[int, int] | None = None,
    align_corners: bool = False,
) -> ReconDiffOutput:
    """Multi-view reconstruction difference (kernel A) with gradients to ``x`` and every view.

    ``is_real`` (B,) weights each sample in ``loss`` (1 = real: reals only are reconstructed).
    ``pool`` asks for the difference map average-pooled to that size (a heatmap or guidance map).
    """
    views = list(views)
    mask = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) if is_real is None else is_real
    mask = mask.detach().to(dtype=x.dtype, device=x.device).contiguous()
    weights = ops._weights(weights, len(views))
    pool = ops._pool(pool)
    loss, per_sample, pooled = _ReconDiff.apply(x, mask, tuple(weights), pool, align_corners, *views)
    return ReconDiffOutput(loss, per_sample, pooled.unsqueeze(1) if pool is not None else None)


class _Compactness(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, is_real, centre):
        out = ops.compactness(features.detach(), is_real, None if centre is None else centre.detach())
        ctx.save_for_backward(is_real, out.normed, out.norms, centre)
        ctx.shape = tuple(features.shape)
        ctx.has_centre = centre is not None
        ctx.mark_non_differentiable(out.normed)
        ctx.set_materialize_grads(False)
        return out.sim, out.diff, out.centroid, out.normed

    @staticmethod
    def backward(ctx, g_sim, g_diff, g_centroid, _g_normed):
        if not ctx.needs_input_grad[0]:
            return None, None, None
        is_real, normed, norms, centre = ctx.saved_tensors
        zero = normed.new_zeros(())
        grad_stats = torch.stack([g if g is not None else zero for g in (g_sim, g_diff, g_centroid)])
        batch, dim = ctx.shape[:2]
        grad = ops.compactness_grad((batch, dim), is_real, normed, norms, grad_stats,
                                    centre if ctx.has_centre else None)
        if len(ctx.shape) == 4:
            # Pooling spreads the gradient evenly: a stride-0 view, not a (B,D,h,w) copy.
            hw = ctx.shape[2] * ctx.shape[3]
            grad = grad.div_(hw).view(batch, dim, 1, 1).expand(ctx.shape)
        return grad, None, None


def compactness_terms(
    features: torch.Tensor, is_real: torch.Tensor, centre: torch.Tensor | None = None
) -> CompactnessOutput:
    """Compactness terms (kernel B) of (B, D) features or (B, D, h, w) maps, differentiable in the features.

    The centre (D,) is a constant (an EMA buffer): no gradient flows to it.
    """
    mask = is_real.detach().to(dtype=features.dtype, device=features.device).contiguous()
    if centre is not None:
        centre = centre.detach().to(dtype=features.dtype, device=features.device).contiguous()
    return CompactnessOutput(*_Compactness.apply(features.contiguous(), mask, centre))


def prototype_distance(features: torch.Tensor, prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of each embedding to its nearest stored real prototype (no gradient)."""
    with torch.no_grad():
        return ops.prototype_distance(features.detach().contiguous(), prototypes.detach().to(features).contiguous())
