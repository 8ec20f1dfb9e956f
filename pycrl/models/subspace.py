"""Spectral split of a pretrained weight into a frozen principal subspace and K
learnable artifact subspaces (MASM, docs/methods.md §5.4; Effort's SVD residual with K groups).

For a weight W0 (a Linear, or a Conv2d flattened to (out, in*kh*kw)) with SVD
``U S Vᵀ`` of rank d, the top ``r = d - K*g`` components form ``W_main``
(frozen) and the tail is split, largest first, into K groups of g components.
Group k keeps trainable ``(U_k, S_k, V_k)`` and the layer computes with

    W = W_main + sum_k U_k diag(S_k) V_kᵀ

which equals W0 at initialisation. ``SubspaceLayer.merged()`` folds the sum
into a plain copy of the wrapped layer for export.
"""

from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch.func import functional_call

SPECTRAL_MODES = ("fro", "sv")


def weight_matrix(layer: nn.Module) -> torch.Tensor:
    """The layer's weight as (out, fan_in); only dense (groups=1) layers have one."""
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        raise ValueError(f"cannot decompose a grouped conv (groups={layer.groups})")
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise TypeError(f"only nn.Linear / nn.Conv2d can be decomposed, got {type(layer).__name__}")
    return layer.weight.reshape(layer.weight.shape[0], -1)


def energy_rank(s: torch.Tensor, energy: float) -> int:
    """Smallest r whose top-r singular values hold ``energy`` of sum(s²)."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"principal_energy must be in (0, 1], got {energy}")
    power = s.double() ** 2
    cumulative = torch.cumsum(power, 0) / power.sum().clamp_min(1e-300)
    return int(torch.searchsorted(cumulative, torch.tensor(energy - 1e-12, dtype=torch.float64))) + 1


def group_rank_for(d: int, groups: int, group_rank: Optional[int] = None,
                   principal_rank: Optional[int] = None, max_tail_fraction: float = 0.5) -> int:
    """Components per artifact group for a layer of rank ``d``.

    From ``principal_rank``: the whole tail ``d - r``, split evenly (the
    principal rank rounds up when the tail does not divide by K). From
    ``group_rank``: capped so the tail stays within ``max_tail_fraction`` of d,
    which keeps narrow layers mostly frozen.
    """
    if principal_rank is not None:
        g = (d - int(principal_rank)) // groups
        if g < 1:
            raise ValueError(f"principal rank {principal_rank} leaves fewer than {groups} tail "
                             f"components of a rank-{d} layer: lower it or the number of groups")
        return g
    if group_rank is None or group_rank < 1:
        raise ValueError(f"group_rank must be >= 1, got {group_rank}")
    return max(1, min(int(group_rank), int(max_tail_fraction * d) // groups))


def split_spectrum(w: torch.Tensor, groups: int, group_rank: int
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W_main, U (K,out,g), S (K,g), V (K,in,g)) of a 2-D weight, in its dtype.

    The SVD runs in float64 so that W_main + tails reproduces W to rounding.
    """
    out_dim, in_dim = w.shape
    tail = groups * group_rank
    if tail > min(out_dim, in_dim):
        raise ValueError(f"{groups} groups of rank {group_rank} exceed the rank of a "
                         f"{out_dim}x{in_dim} weight")
    u, s, vh = torch.linalg.svd(w.detach().double(), full_matrices=False)
    r = s.numel() - tail
    main = (u[:, :r] * s[:r]) @ vh[:r]
    ut = u[:, r:].T.reshape(groups, group_rank, out_dim).transpose(1, 2)
    vt = vh[r:].reshape(groups, group_rank, in_dim).transpose(1, 2)
    st = s[r:].reshape(groups, group_rank)
    return tuple(t.to(w.dtype).contiguous() for t in (main, ut, st, vt))


def _stacked(factor: torch.Tensor) -> torch.Tensor:
    """(K, n, g) -> (n, K*g): every group's columns side by side."""
    k, n, g = factor.shape
    return factor.transpose(0, 1).reshape(n, k * g)


def gram_terms(factor: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(between, within) for one factor (K, n, g):
    between = sum_{k≠l} ||F_kᵀ F_l||²_F, within = sum_k ||F_kᵀ F_k - I||²_F."""
    k, _, g = factor.shape
    flat = _stacked(factor)
    gram = flat.T @ flat
    same = torch.block_diag(*[torch.ones(g, g, dtype=gram.dtype, device=gram.device)] * k)
    eye = torch.eye(k * g, dtype=gram.dtype, device=gram.device)
    between = (gram * (1 - same)).pow(2).sum()
    within = ((gram - eye) * same).pow(2).sum()
    return between, within


class SubspaceLayer(nn.Module):
    """Wraps a Linear / Conv2d: ``base.weight`` becomes W_main (frozen) and the
    layer computes with ``W_main + sum_k U_k diag(S_k) V_kᵀ``.

    The wrapped module keeps its own forward (padding rules included): the
    effective weight is swapped in with ``torch.func.functional_call``.
    Buffers keep what the spectral-consistency term compares against:
    ``ref_sq_norm`` = ||W0||²_F and ``ref_tail_sv`` = the tail's singular values.
    On the meta device (a model folder being rebuilt) only shapes are made.
    """

    ref_sq_norm: torch.Tensor
    ref_tail_sv: torch.Tensor

    def __init__(self, base: nn.Module, groups: int, group_rank: int):
        super().__init__()
        w = weight_matrix(base)
        assert isinstance(base, (nn.Linear, nn.Conv2d))  # weight_matrix accepts nothing else
        out_dim, in_dim = w.shape
        self.groups, self.group_rank = int(groups), int(group_rank)
        self.base = base
        base.weight.requires_grad_(False)
        shape = lambda *s: torch.empty(*s, dtype=w.dtype, device=w.device)  # noqa: E731
        u, s, v = shape(groups, out_dim, group_rank), shape(groups, group_rank), shape(groups, in_dim, group_rank)
        ref_sq, ref_sv = shape(()), shape(groups * group_rank)
        if not w.is_meta:
            main, u, s, v = split_spectrum(w, groups, group_rank)
            ref_sq, ref_sv = w.detach().pow(2).sum(), s.flatten().clone()
            with torch.no_grad():
                base.weight.copy_(main.reshape(base.weight.shape))
        self.U, self.S, self.V = nn.Parameter(u), nn.Parameter(s), nn.Parameter(v)
        self.register_buffer("ref_sq_norm", ref_sq)
        self.register_buffer("ref_tail_sv", ref_sv)

    def factors(self) -> Tuple[nn.Parameter, nn.Parameter, nn.Parameter]:
        return self.U, self.S, self.V

    def tail(self) -> torch.Tensor:
        """sum_k U_k diag(S_k) V_kᵀ as one (out, fan_in) matrix."""
        return (_stacked(self.U) * self.S.reshape(-1)) @ _stacked(self.V).T

    def weight(self) -> torch.Tensor:
        w = self.base.weight
        return w + self.tail().reshape(w.shape).to(w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, {"weight": self.weight()}, (x,))

    @torch.no_grad()
    def merged(self) -> nn.Module:
        """A plain copy of the wrapped layer holding the effective weight."""
        plain = copy.deepcopy(self.base)
        plain.weight = nn.Parameter(self.weight().detach().clone(), requires_grad=False)
        return plain

    # -- regularisers (docs/methods.md §5.4)

    def orthogonality(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(between, within) summed over the U and V factors."""
        ub, uw = gram_terms(self.U)
        vb, vw = gram_terms(self.V)
        return ub + vb, uw + vw

    def tail_singular_values(self) -> torch.Tensor:
        """Singular values of the learned tail, descending, without forming it:
        with U = Qu Ru and V = Qv Rv the tail's spectrum is that of Ru diag(S) Rvᵀ."""
        _, ru = torch.linalg.qr(_stacked(self.U))
        _, rv = torch.linalg.qr(_stacked(self.V))
        return torch.linalg.svdvals((ru * self.S.reshape(-1)) @ rv.T)

    def spectral(self, mode: str = "fro") -> torch.Tensor:
        """``fro``: | ||W||²_F - ||W0||²_F | (Effort's keep-SV term);
        ``sv``: squared L2 distance between the sorted singular values of the
        learned tail and of the pretrained tail (the principal part is frozen,
        so the tail is where the spectrum can drift)."""
        if mode == "fro":
            return (self.weight().pow(2).sum() - self.ref_sq_norm).abs()
        if mode == "sv":
            return (self.tail_singular_values() - self.ref_tail_sv).pow(2).sum()
        raise ValueError(f"spectral mode must be one of {SPECTRAL_MODES}, got {mode!r}")


def layer_rank(layer: nn.Module) -> int:
    """min(out, fan_in): how many components the layer's spectrum has."""
    return min(weight_matrix(layer).shape)
