"""Python face of the fused kernels in ``pycrl._C``.

The functions here take numpy arrays or torch tensors (float32 or float64,
C-contiguous; CPU, or CUDA when the extension was built with it), pass them
to the kernels without copies and return results of the same kind. The
autograd-aware versions for training live in :mod:`pycrl.ops.autograd`.

Kernel A, :func:`recon_diff`: for an input ``x`` (B,C,H,W) and reconstructions
``views[v]`` (B,C,h_v,w_v) bilinearly upsampled on the fly (never stored),
  ``D[b] = sum_v w_v * mean_c |up(views[v]) - x|`` (an H x W map per sample),
  ``per_sample[b] = mean(D[b])``,
  ``loss = sum_b mask_b * per_sample_b / max(sum_b mask_b, 1)`` (mask 1 = real),
  ``pooled = adaptive_avg_pool2d(D, pool)`` when ``pool=(Ph, Pw)`` is given.

Kernel B, :func:`compactness`: features (B,D) or maps (B,D,h,w) are average
pooled and L2-normalised to ``f``; with ``S_ij = (f_i . f_j + 1) / 2``,
  ``sim`` = mean S over ordered real-real pairs i != j (0 with < 2 reals),
  ``diff`` = mean S over real-fake pairs (0 without both classes),
  ``centroid`` = mean over reals of ``||f_i - c/||c|| ||^2`` (0 without a centre).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from pycrl.ops._arrays import as_like, empty_like_ref, stream_of

__all__ = [
    "ReconDiff",
    "Compactness",
    "recon_diff",
    "recon_diff_grad",
    "compactness",
    "compactness_grad",
    "prototype_distance",
    "build_info",
    "cuda_available",
]


def _C():
    # Imported on first use so that `import pycrl.ops` explains a missing build.
    try:
        from pycrl import _C as ext
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "pycrl._C is not built: install pycrl with `pip install .` (or `pip install -e .`) "
            f"so that CMake compiles csrc/ ({err})"
        ) from err
    return ext


def build_info() -> dict:
    """How the extension was built (compiler, CUDA and architectures, threads, dtypes)."""
    return dict(_C().build_info())


def cuda_available():
    """A ``CudaStatus``: truthy when the CUDA kernels can run; ``.reason`` says why not."""
    return _C().cuda_available()


class ReconDiff(NamedTuple):
    loss: Any  # scalar (0-d)
    per_sample: Any  # (B,)
    pooled: Any  # (B, Ph, Pw) or None


class Compactness(NamedTuple):
    sim: Any  # 0-d
    diff: Any  # 0-d
    centroid: Any  # 0-d
    normed: Any  # (B, D) L2-normalised pooled features
    norms: Any  # (B,) their norms before normalisation


def _weights(weights: Sequence[float] | None, n_views: int) -> list[float]:
    if weights is None:
        return [1.0] * n_views
    w = [float(v) for v in weights]
    if len(w) != n_views:
        raise ValueError(f"weights: expected one weight per view ({n_views}), got {len(w)}")
    return w


def _views(views) -> list:
    if not isinstance(views, (list, tuple)):
        raise TypeError(f"views: expected a list or tuple of arrays, got {type(views).__name__}")
    return list(views)


def _pool(pool) -> tuple[int, int] | None:
    if pool is None:
        return None
    if isinstance(pool, int):
        pool = (pool, pool)
    if len(pool) != 2 or any(not isinstance(p, (int, np.integer)) or p < 1 for p in pool):
        raise ValueError(f"pool: expected a positive int or a pair of positive ints, got {pool!r}")
    return int(pool[0]), int(pool[1])


def recon_diff(x, views, weights=None, mask=None, pool=None, align_corners: bool = False) -> ReconDiff:
    """Kernel A forward. ``mask`` (B,) weights each sample's loss (1 = real, 0 = fake; default all 1)."""
    views = _views(views)
    w = _weights(weights, len(views))
    batch = _batch(x, "x")
    mask = as_like(mask if mask is not None else np.ones(batch), x, "mask")
    per_sample = empty_like_ref(x, (batch,))
    loss = empty_like_ref(x, ())
    p = _pool(pool)
    pooled = empty_like_ref(x, (batch, *p)) if p else None
    _C().recon_diff_forward(x, views, w, mask, per_sample, loss, pooled, align_corners, stream_of(x))
    return ReconDiff(loss, per_sample, pooled)


def recon_diff_grad(
    x,
    views,
    weights=None,
    mask=None,
    *,
    grad_loss=None,
    grad_per_sample=None,
    grad_pooled=None,
    align_corners: bool = False,
    need_x: bool = True,
    need_views: bool | Sequence[bool] = True,
):
    """Kernel A backward: ``(grad_x, [grad_view, ...])`` for the given output gradients.

    Entries are None where not requested (``need_x``, ``need_views`` per view).
    """
    views = _views(views)
    w = _weights(weights, len(views))
    batch = _batch(x, "x")
    mask = as_like(mask if mask is not None else np.ones(batch), x, "mask")
    if grad_loss is not None:
        grad_loss = as_like(grad_loss, x, "grad_loss")
    want = [need_views] * len(views) if isinstance(need_views, bool) else list(need_views)
    gx = empty_like_ref(x, tuple(x.shape)) if need_x else None
    gv = [empty_like_ref(x, tuple(v.shape)) if k else None for v, k in zip(views, want)]
    _C().recon_diff_backward(
        x, views, w, mask, grad_loss, grad_per_sample, grad_pooled, gx, gv, align_corners, stream_of(x)
    )
    return gx, gv


def compactness(features, is_real, centre=None) -> Compactness:
    """Kernel B forward; ``is_real`` (B,) is 1 for real samples and 0 for fakes."""
    batch = _batch(features, "features")
    mask = as_like(is_real, features, "is_real")
    normed = empty_like_ref(features, (batch, features.shape[1]) if _ndim(features) >= 2 else (batch,))
    norms = empty_like_ref(features, (batch,))
    stats = empty_like_ref(features, (3,))
    if centre is not None:
        centre = as_like(centre, features, "centre")
    _C().compactness_forward(features, mask, normed, norms, stats, centre, stream_of(features))
    return Compactness(stats[0], stats[1], stats[2], normed, norms)


def compactness_grad(features_shape, is_real, normed, norms, grad_stats, centre=None):
    """Kernel B backward: the gradient with respect to the features, shape ``features_shape``.

    ``grad_stats`` holds the upstream gradients of (sim, diff, centroid).
    """
    grad = empty_like_ref(normed, tuple(features_shape))
    mask = as_like(is_real, normed, "is_real")
    grad_stats = as_like(grad_stats, normed, "grad_stats")
    if centre is not None:
        centre = as_like(centre, normed, "centre")
    _C().compactness_backward(grad, mask, normed, norms, grad_stats, centre, stream_of(normed))
    return grad


def prototype_distance(features, prototypes):
    """Squared distance of each normalised (pooled) embedding to its nearest normalised prototype.

    Returns ``(dist, index)``: (B,) distances in [0, 4] and (B,) int64 prototype indices.
    """
    batch = _batch(features, "features")
    dist = empty_like_ref(features, (batch,))
    index = empty_like_ref(features, (batch,), dtype="int64")
    _C().prototype_distance(features, prototypes, dist, index, stream_of(features))
    return dist, index


def _ndim(a) -> int:
    return len(a.shape)


def _batch(a, name: str) -> int:
    shape = getattr(a, "shape", None)
    if shape is None:
        raise TypeError(f"{name}: expected an array (numpy array or torch tensor), got {type(a).__name__}")
    if len(shape) == 0:
        raise ValueError(f"{name}: expected a batch dimension, got a 0-d array")
    return int(shape[0])
