"""Exposing the Deception (Ba, Liu et al., AAAI 2024; docs/methods.md §4).

n Local Information Blocks (LIBs), each a full backbone that sees the whole face,
give pooled features f_1..f_n, concatenated into F (B, n*d). A fusion bottleneck
(ChannelCompress) maps F to the global feature z, and the main head on z gives the
prediction used for scores and export. Two training-only head families feed the
losses (pycrl/losses/exposing.py): ``cls_all`` = p(y | F) and the n leave-one-out
heads ``cls_local[:, i]`` = p(y | F without f_i).

The n LIBs cost n backbones. Where the backbone only mixes channels through
convolutions (every op between them acts per channel), the n copies are packed into
one network: the input is repeated n times along channels, every Conv2d gets n times
its groups and channels, every BatchNorm n times its channels. Copy i then owns
channel block i at every layer, so one pass computes all n LIBs with a few large
kernels instead of n sequential passes. Other backbones run in a loop. Measured on a
2-core CPU: ONNX Runtime serves the packed Lite0 graph about 10 % faster than the
looped one; torch training runs at par for small LIBs, while 4 x Lite0 activations
outgrow the cache and the loop wins there (``pack=False``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence

import torch
import torch.nn as nn

from .base import Backbone, Detector, global_pool
from .registry import BACKBONES, create_backbone, register_model

# Backbones whose stage code combines channels only through their Conv2d/BatchNorm
# modules (residual adds, pooling and gating are per channel), so they pack exactly.
# EfficientNet caveat: stochastic depth draws one keep-mask per sample, which the
# packed copies share in training (separate backbones would draw n masks).
PACKABLE_BACKBONES = frozenset({"tiny", "xception-lite", "xception", "efficientnet_lite0",
                                "efficientnet_b4_dfb"})
# Leaf modules that act on each channel alone (anything else, e.g. a Linear, blocks packing).
_PER_CHANNEL = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Sigmoid, nn.Tanh,
                nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


def unpackable_reason(backbone: nn.Module) -> str | None:
    """Why ``backbone`` cannot be packed n-ways, or None when it can."""
    name = getattr(type(backbone), "pycrl_name", type(backbone).__name__)
    if name not in PACKABLE_BACKBONES:
        return f"backbone {name!r} is not known to act per channel between its convolutions"
    for mod_name, m in backbone.named_modules():
        if not any(True for _ in m.children()) and not isinstance(m, _PER_CHANNEL):
            return f"{mod_name} ({type(m).__name__}) mixes channels outside a convolution"
    return None


def _stack(tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
    # The copies share one architecture: an optional tensor (a bias, BatchNorm
    # statistics) that the packed module has, every copy has.
    present = [t for t in tensors if t is not None]
    assert len(present) == len(tensors)
    return torch.cat([t.detach() for t in present]).clone()


def _pack_conv(conv: nn.Conv2d, parts: Sequence[nn.Conv2d]) -> None:
    # Grouped conv with n*g groups: group (i, h) reads copy i's input block h and
    # writes its output block h, i.e. the copies' weights stacked along dim 0.
    n = len(parts)
    conv.weight = nn.Parameter(_stack([p.weight for p in parts]))
    if conv.bias is not None:
        conv.bias = nn.Parameter(_stack([p.bias for p in parts]))
    conv.in_channels, conv.out_channels, conv.groups = conv.in_channels * n, conv.out_channels * n, conv.groups * n


def _pack_bn(bn: nn.BatchNorm2d, parts: Sequence[nn.BatchNorm2d]) -> None:
    bn.num_features *= len(parts)
    if bn.affine:
        bn.weight = nn.Parameter(_stack([p.weight for p in parts]))
        bn.bias = nn.Parameter(_stack([p.bias for p in parts]))
    if bn.track_running_stats:
        bn.running_mean = _stack([p.running_mean for p in parts])
        bn.running_var = _stack([p.running_var for p in parts])


def pack_backbones(backbones: Sequence[Backbone]) -> Backbone:
    """One backbone computing all of ``backbones`` (same architecture, own weights) at once:
    input (B, n*C_in, H, W) = the n inputs stacked along channels, output channel block i =
    backbone i's output. Weights and BatchNorm statistics are copied, not shared."""
    reason = unpackable_reason(backbones[0])
    if reason:
        raise ValueError(f"cannot pack: {reason}")
    n = len(backbones)
    packed = copy.deepcopy(backbones[0])
    modules = [dict(b.named_modules()) for b in backbones]
    for name, m in packed.named_modules():
        parts = [mods[name] for mods in modules]
        if isinstance(m, nn.Conv2d):
            _pack_conv(m, parts)
        elif isinstance(m, nn.BatchNorm2d):
            _pack_bn(m, parts)
    packed.feature_info = [f._replace(channels=f.channels * n) for f in backbones[0].feature_info]
    return packed


def build_backbone(name: str, cfg: dict | None, pretrained: bool) -> Backbone:
    """A registered backbone; ``pretrained`` is passed only to backbones that take it."""
    cfg = dict(cfg or {})
    if "pretrained" in inspect.signature(BACKBONES.get(name)).parameters:
        cfg.setdefault("pretrained", pretrained)
    return create_backbone(name, **cfg)


class LocalBlocks(nn.Module):
    """The n LIBs: image (B, 3, H, W) -> F (B, n*d), block i = GAP of LIB i's last stage."""

    def __init__(self, backbones: list[Backbone], pack: bool = True, channels_last: bool = False):
        super().__init__()
        self.n, self.dim = len(backbones), backbones[0].num_features
        self.packed = bool(pack) and unpackable_reason(backbones[0]) is None
        if self.packed:
            self.net = pack_backbones(backbones)
        else:
            self.nets = nn.ModuleList(backbones)
        if channels_last:
            # Module.to takes memory_format at runtime; torch's overloads omit it
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return global_pool(self.net(x.repeat(1, self.n, 1, 1)))
        return torch.cat([global_pool(net(x)) for net in self.nets], dim=1)


def channel_compress(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float) -> nn.Sequential:
    """The fusion bottleneck: [Linear, BN, ReLU, Dropout] per hidden size, then Linear to out_dim."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, int(width)), nn.BatchNorm1d(int(width)), nn.ReLU(inplace=True),
                   nn.Dropout(dropout)]
        in_dim = int(width)
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class GlobalPath(Detector):
    """LIBs -> F -> bottleneck -> z -> main head: all that scoring needs (and all that is
    exported). Shares its modules with the detector that built it."""

    def __init__(self, libs: LocalBlocks, compress: nn.Module, head: nn.Module, num_classes: int = 2):
        super().__init__()
        self.num_classes = num_classes
        self.libs, self.compress, self.head = libs, compress, head

    def predict(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.compress(feats)
        cls = self.head(z)
        return {"cls": cls, "prob": self.probability(cls), "feat": z}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.predict(self.libs(x))


@register_model("exposing")
class Exposing(GlobalPath):
    """Exposing-the-Deception detector.

    ``forward(x)`` returns ``cls``/``prob`` (main head on z) and ``feat`` (z, B x fusion_dim);
    in training mode also ``cls_all`` (B, C) = p(y | F) and ``cls_local`` (B, n, C), column i
    = p(y | F without f_i). Eval mode and export compute the global path only.

    Args:
        num_libs: n, the number of Local Information Blocks (paper: 4).
        backbone / backbone_cfg: registered backbone of every LIB and its arguments
            (paper: ResNet-34; here EfficientNet-Lite0, one of the paper's options).
        pretrained: initialise each LIB from the backbone's offline ImageNet weights,
            for backbones that have them (ignored by the others).
        pack: run the n LIBs as one grouped network where the backbone allows
            (numerically the same as n backbones); False always loops.
        bottleneck: hidden widths of the fusion MLP (paper: 1000, 500).
        fusion_dim: size of z; None = the backbone feature width d (as the paper).
        dropout: of the bottleneck's hidden layers and before the main head (paper: 0.5).
        channels_last: keep the LIB weights in NHWC order, which oneDNN convolves about
            1.5x faster on CPU (a speed choice only; saved folders store plain tensors).
    """

    def __init__(self, num_classes: int = 2, num_libs: int = 4, backbone: str = "efficientnet_lite0",
                 backbone_cfg: dict | None = None, pretrained: bool = True, pack: bool = True,
                 bottleneck: Sequence[int] = (1000, 500), fusion_dim: int | None = None,
                 dropout: float = 0.5, channels_last: bool = False):
        if num_libs < 2:
            raise ValueError(f"num_libs must be at least 2 (leave-one-out heads), got {num_libs}")
        backbones = [build_backbone(backbone, backbone_cfg, pretrained) for _ in range(num_libs)]
        libs = LocalBlocks(backbones, pack, channels_last)
        n, d = libs.n, libs.dim
        z_dim = int(fusion_dim or d)
        super().__init__(libs, channel_compress(n * d, bottleneck, z_dim, dropout),
                         nn.Sequential(nn.Dropout(dropout), nn.Linear(z_dim, num_classes)), num_classes)
        self.all_head = nn.Linear(n * d, num_classes)
        self.local_heads = nn.ModuleList(nn.Linear((n - 1) * d, num_classes) for _ in range(n))

    def leave_one_out(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, n, C): head i applied to F with block f_i removed."""
        blocks = feats.view(feats.shape[0], self.libs.n, self.libs.dim)
        outs = [head(torch.cat([blocks[:, :i], blocks[:, i + 1:]], dim=1).flatten(1))
                for i, head in enumerate(self.local_heads)]
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.libs(x)
        out = self.predict(feats)
        if self.training:
            out["cls_all"] = self.all_head(feats)
            out["cls_local"] = self.leave_one_out(feats)
        return out

    def inference_module(self) -> GlobalPath:
        """The global path alone: the auxiliary heads are training-only."""
        return GlobalPath(self.libs, self.compress, self.head, self.num_classes).train(self.training)
