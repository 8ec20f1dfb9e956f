"""Xception (Chollet 2017) in the module layout shared by timm 0.6 and
DeepfakeBench, so both checkpoint families load by key.

The two layouts differ only outside the feature extractor:
timm names the ImageNet classifier ``fc``; DeepfakeBench's ``Xception``
calls it ``last_linear`` and always builds an unused ``adjust_channel``
(1x1 conv 2048->512 + BN). ``DEEPFAKEBENCH_KEYMAP`` states that difference
as data; pycrl keeps timm's names.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from .base import Backbone, FeatureInfo, global_pool
from .registry import register_backbone

# DeepfakeBench Xception key prefix -> pycrl key prefix (None: present in
# checkpoints, unused by the forward pass, dropped on import).
DEEPFAKEBENCH_KEYMAP = (
    ("last_linear.", "fc."),
    ("adjust_channel.", None),
)


class SeparableConv2d(nn.Module):
    """Depthwise k x k conv followed by a pointwise 1x1 conv (no bias)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, dilation,
                               groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class XceptionBlock(nn.Module):
    """Residual block of ``reps`` x (ReLU, SeparableConv, BN) [+ max-pool].

    ``rep`` is a flat Sequential whose indices (ReLU at 0, conv at 1, BN at 2,
    ...) are part of the checkpoint key layout, hence ReLU modules in it.
    The leading ReLU is out-of-place: the block input also feeds the skip.
    """

    def __init__(self, in_ch: int, out_ch: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True):
        super().__init__()
        self.skip: nn.Conv2d | None
        if out_ch != in_ch or stride != 1:
            self.skip = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_ch)
        else:
            self.skip = None
        layers = []
        for i in range(reps):
            if grow_first:
                c_in, c_out = (in_ch if i == 0 else out_ch), out_ch
            else:  # keep the width until the last unit (Xception exit flow)
                c_in, c_out = in_ch, (in_ch if i < reps - 1 else out_ch)
            layers += [nn.ReLU(inplace=i > 0), SeparableConv2d(c_in, c_out, 3, 1, 1),
                       nn.BatchNorm2d(c_out)]
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + skip


@register_backbone("xception")
class Xception(Backbone):
    """Xception feature extractor; stages: stem, block1..block12, head.

    ``head`` ends with the final ReLU (act4): both RECCE and DeepfakeBench's
    xception detector pool / report the post-ReLU 2048-channel map.
    ``num_classes > 0`` adds the ImageNet-style ``fc`` classifier (timm name).
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = XceptionBlock(64, 128, 2, 2, start_with_relu=False)
        self.block2 = XceptionBlock(128, 256, 2, 2)
        self.block3 = XceptionBlock(256, 728, 2, 2)
        for i in range(4, 12):  # middle flow
            setattr(self, f"block{i}", XceptionBlock(728, 728, 3, 1))
        self.block12 = XceptionBlock(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(2048)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2048, num_classes) if num_classes else None

        channels = {1: 128, 2: 256, 12: 1024}
        reductions = {1: 4, 2: 8, 12: 32}
        self.feature_info = (
            [FeatureInfo("stem", 64, 2)]
            + [FeatureInfo(f"block{i}", channels.get(i, 728), reductions.get(i, 16))
               for i in range(1, 13)]
            + [FeatureInfo("head", 2048, 32)]
        )

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "stem":
            x = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(x)))
        if name == "head":
            x = self.relu(self.bn3(self.conv3(x)))
            return self.relu(self.bn4(self.conv4(x)))
        return getattr(self, name)(x)

    def stage_modules(self, name: str) -> List[nn.Module]:
        if name == "stem":
            return [self.conv1, self.bn1, self.conv2, self.bn2]
        if name == "head":
            return [self.conv3, self.bn3, self.conv4, self.bn4]
        return [getattr(self, name)]

    def forward_head(self, feat: torch.Tensor) -> torch.Tensor:
        """ImageNet logits from the ``head`` stage output (needs ``num_classes``)."""
        if self.fc is None:
            raise RuntimeError("built with num_classes=0: no classifier")
        return self.fc(global_pool(feat))
