"""RECCE (Cao et al., CVPR 2022): an Xception encoder-decoder that reconstructs
the input, fuses encoder and decoder features by graph reasoning, and gates a
later encoder feature by the reconstruction error.

Module names follow RECCE / DeepfakeBench (``encoder``, ``decoder1..6``,
``reasoning``, ``attention``) so their checkpoints map by prefix; the final
classifier is ``head`` like every pycrl detector.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Detector, global_pool
from .registry import register_model
from .xception import SeparableConv2d, Xception, XceptionBlock


class GraphReasoning(nn.Module):
    """Per-location attention from each encoder vertex ``a`` to the r x r
    decoder patch under it (``b``: ratio[0], ``c``: ratio[1]).

    Vectorised: children are gathered with a reshape (no unfold, no Python
    loop over positions), so it exports to ONNX with static shapes. Two
    exact rewrites save compute without changing the maths:
    * ``Linear([emb_a; emb_b])`` = ``W_a emb_a + W_b emb_b``: the ``a`` term is
      computed once per location instead of once per child.
    * The second (bias-free, linear) layer of the child embedding commutes
      with the attention-weighted sum, so it runs on the aggregated vectors
      only (1 per location instead of r*r), and the logit uses
      ``(W2^T w_b) . h`` instead of ``w_b . (W2 h)``.
    """

    def __init__(self, va_in: int, va_out: int, vb_in: int, vb_out: int, vc_in: int,
                 vc_out: int, spatial_ratio: Sequence[int] = (2, 4), drop_rate: float = 0.2):
        super().__init__()
        if not va_out == vb_out == vc_out:
            raise ValueError("the a-vertex gates need va_out == vb_out == vc_out")
        self.ratio = tuple(int(r) for r in spatial_ratio)
        self.va_embedding = nn.Sequential(
            nn.Conv2d(va_in, va_out, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(va_out, va_out, 1, bias=False))
        self.va_gated_b = nn.Sequential(nn.Conv2d(va_in, va_out, 1, bias=False), nn.Sigmoid())
        self.va_gated_c = nn.Sequential(nn.Conv2d(va_in, va_out, 1, bias=False), nn.Sigmoid())
        self.vb_embedding = nn.Sequential(
            nn.Linear(vb_in, vb_out, bias=False), nn.ReLU(inplace=True),
            nn.Linear(vb_out, vb_out, bias=False))
        self.vc_embedding = nn.Sequential(
            nn.Linear(vc_in, vc_out, bias=False), nn.ReLU(inplace=True),
            nn.Linear(vc_out, vc_out, bias=False))
        # Only the Linear carries weights; ReLU and the softmax over children
        # are applied in forward (index 0 kept for the checkpoint layout).
        self.reweight_ab = nn.Sequential(nn.Linear(va_out + vb_out, 1, bias=False))
        self.reweight_ac = nn.Sequential(nn.Linear(va_out + vc_out, 1, bias=False))
        self.reproject = nn.Sequential(
            nn.Conv2d(va_out + vb_out + vc_out, va_in, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(va_in, va_in, 1, bias=False), nn.Dropout(drop_rate))

    @staticmethod
    def patches(v: torch.Tensor, r: int, h: int, w: int) -> torch.Tensor:
        """(B, C, h*r, w*r) -> (B, h*w, r*r, C): the r x r patch under each
        coarse location, row-major within the patch (as nn.Unfold orders it)."""
        c = v.shape[1]
        v = v.reshape(-1, c, h, r, w, r).permute(0, 2, 4, 3, 5, 1)
        return v.reshape(-1, h * w, r * r, c)

    def aggregate(self, flat_a: torch.Tensor, v: torch.Tensor, r: int, hw: Sequence[int],
                  embedding: nn.Sequential, reweight: nn.Module) -> torch.Tensor:
        """Attention-weighted sum of the embedded children of each location.

        flat_a: (B, L, D) embedded a-vertices; v: (B, C, h*r, w*r). -> (B, L, D)
        embedding: (Linear, ReLU, Linear); reweight: the Linear scoring [a; child].
        """
        d = flat_a.shape[-1]
        hidden = F.relu(embedding[0](self.patches(v, r, hw[0], hw[1])))  # B, L, r*r, Dh
        second = embedding[2]
        assert isinstance(second, nn.Linear) and isinstance(reweight, nn.Linear)
        w2 = second.weight                                                  # D x Dh
        w_a, w_b = reweight.weight[:, :d], reweight.weight[:, d:]           # 1 x D each
        logit = F.linear(flat_a, w_a).unsqueeze(2) + F.linear(hidden, w_b @ w2)
        attn = torch.softmax(F.relu(logit), dim=2)                          # over the r*r children
        return F.linear((attn * hidden).sum(dim=2), w2)

    def forward(self, vert_a: torch.Tensor, vert_b: torch.Tensor,
                vert_c: torch.Tensor) -> torch.Tensor:
        hw = (vert_a.shape[-2], vert_a.shape[-1])
        emb_a = self.va_embedding(vert_a)                                   # B, D, h, w
        d = emb_a.shape[1]
        flat_a = emb_a.flatten(2).transpose(1, 2)                           # B, L, D
        agg_b = self.aggregate(flat_a, vert_b, self.ratio[0], hw, self.vb_embedding,
                               self.reweight_ab[0])
        agg_c = self.aggregate(flat_a, vert_c, self.ratio[1], hw, self.vc_embedding,
                               self.reweight_ac[0])
        agg_b = agg_b.transpose(1, 2).reshape(-1, d, hw[0], hw[1]) * (1 - self.va_gated_b(vert_a))
        agg_c = agg_c.transpose(1, 2).reshape(-1, d, hw[0], hw[1]) * (1 - self.va_gated_c(vert_a))
        return self.reproject(torch.sigmoid(torch.cat([agg_b, agg_c, emb_a], dim=1)))


class GuidedAttention(nn.Module):
    """``M * h(F) + dropout(F)``, with the mask ``M`` computed from the
    reconstruction error |x - x_hat| resized to the feature map: poorly
    reconstructed (likely forged) regions are emphasised."""

    def __init__(self, depth: int = 728, drop_rate: float = 0.2):
        super().__init__()
        self.gated = nn.Sequential(
            nn.Conv2d(3, 3, 3, 1, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(3, 1, 1, bias=False), nn.Sigmoid())
        self.h = nn.Sequential(
            nn.Conv2d(depth, depth, 1, 1, bias=False), nn.BatchNorm2d(depth),
            nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, recon: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        residual = F.interpolate((x - recon).abs(), size=feat.shape[-2:], mode="bilinear",
                                 align_corners=True)
        return self.gated(residual) * self.h(feat) + self.dropout(feat)


def _upsample_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Nearest x2 upsample, separable conv, BN, ReLU (decoder1/3/5)."""
    return nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                         SeparableConv2d(in_ch, out_ch, 3, 1, 1), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


@register_model("recce")
class Recce(Detector):
    """RECCE detector.

    ``forward(x)`` returns
      cls (B, num_classes), prob (B), feat (B, 2048 pooled embedding),
      recon (B, 3, H, W): tanh decoder output, bilinearly (align_corners=True)
        resized to the input, as RECCE/DeepfakeBench compute it,
      recon_views: [native-resolution decoder output] for the loss kernels,
      metric_feats: [block4 embedding, decoder2 output, decoder4 output].

    Args:
        num_classes: 2 (DeepfakeBench, softmax) or 1 (RECCE paper, sigmoid).
        drop_rate: dropout on the decoder input, in graph reasoning, guided
            attention and before the classifier.
        train_noise_std: RECCE adds N(0, std) noise to a random half of a
            training batch and clips to [-1, 1]; 0 disables it.
    """

    def __init__(self, num_classes: int = 2, drop_rate: float = 0.2,
                 train_noise_std: float = 1e-6, in_chans: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.train_noise_std = train_noise_std
        self.encoder = Xception(in_chans=in_chans)
        self.attention = GuidedAttention(728, drop_rate)
        self.reasoning = GraphReasoning(728, 256, 256, 256, 128, 256, (2, 4), drop_rate)
        self.decoder1 = _upsample_block(728, 256)
        self.decoder2 = XceptionBlock(256, 256, 3, 1)
        self.decoder3 = _upsample_block(256, 128)
        self.decoder4 = XceptionBlock(128, 128, 3, 1)
        self.decoder5 = _upsample_block(128, 64)
        self.decoder6 = nn.Sequential(nn.Conv2d(64, 3, 1, bias=False), nn.Tanh())
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.encoder.num_features, num_classes)

    def _add_white_noise(self, x: torch.Tensor) -> torch.Tensor:
        pick = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) > 0.5).to(x.dtype)
        noise = torch.randn_like(x) * self.train_noise_std
        return torch.clamp(x + noise * pick, -1.0, 1.0)

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        enc_in = x
        if self.training and self.train_noise_std > 0:
            enc_in = self._add_white_noise(x)
        emb4 = self.encoder.forward_stages(enc_in, "stem", "block4")

        out_d2 = self.decoder2(self.decoder1(self.dropout(emb4)))
        out_d4 = self.decoder4(self.decoder3(out_d2))
        recon_native = self.decoder6(self.decoder5(out_d4))
        recon = F.interpolate(recon_native, size=x.shape[-2:], mode="bilinear",
                              align_corners=True)

        e7 = self.encoder.forward_stages(emb4, "block5", "block7")
        fused = self.reasoning(e7, out_d2, out_d4) + e7
        e8 = self.encoder.run_stage("block8", fused)
        attended = self.attention(x, recon, e8)
        feat = global_pool(self.encoder.forward_stages(attended, "block9", "head"))
        cls = self.head(self.dropout(feat))
        return {
            "cls": cls,
            "prob": self.probability(cls),
            "feat": feat,
            "recon": recon,
            "recon_views": [recon_native],
            "metric_feats": [emb4, out_d2, out_d4],
        }
