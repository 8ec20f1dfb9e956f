"""CAE: joint unsupervised reconstruction and supervised classification
(Yan, Li, Lu, arXiv 2211.13424; docs/methods.md §6). No code is public; the
structure follows the abstract and a third-party summary, and every
unstated choice is a constructor argument (stated in pycrl/train/configs/cae.yaml).

One shared convolutional encoder compresses the face to a latent map. Two
branches read it:
* a classifier: global average pooling, a shallow FC + ReLU stack, logits;
* a decoder: a ConvTranspose (or nearest-upsample + conv) + BN + ReLU stack
  that reconstructs every input image, real or fake, at the input size.

The decoder only shapes the latent during training. In eval mode the forward
pass skips it, so the exported graph (and its cost) is the encoder plus the
classifier; ``reconstruct`` gives reconstructions for inspection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Detector, global_pool
from .registry import create_backbone, register_model

UPSAMPLING = ("transpose", "nearest")
OUT_ACTIVATIONS = ("tanh", "linear")


def _up_block(in_ch: int, out_ch: int, mode: str) -> nn.Sequential:
    """One x2 decoder stage: ConvTranspose k4 s2 p1 (exact doubling) or nearest x2 +
    3x3 conv (fewer weights, no checkerboard), then BN and ReLU."""
    up: list[nn.Module]
    if mode == "transpose":
        up = [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)]
    else:
        up = [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)]
    return nn.Sequential(*up, nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def _upsampling_stages(reduction: int, encoder: str) -> int:
    """x2 decoder stages that undo the encoder's nominal reduction."""
    stages = round(math.log2(reduction)) if reduction > 0 else -1
    if stages < 1 or 2 ** stages != reduction:
        raise ValueError(f"encoder {encoder!r}: its latent's reduction {reduction} is not a power of 2")
    return stages


def default_decoder_widths(latent_channels: int, stages: int) -> list:
    """Half the latent width, capped at 256 (a 2048-wide Xception latent would
    otherwise make the first stage larger than the encoder's exit flow), then
    halved per stage, never below 8."""
    first = min(max(latent_channels // 2, 8), 256)
    return [max(first >> i, 8) for i in range(stages)]


class ReconDecoder(nn.Module):
    """Latent map (B, C, h, w) -> image (B, 3, H, W): ``len(widths)`` x2 stages, a 3x3
    conv to RGB, the output activation, and a bilinear resize when ``h * 2**stages``
    is not the input size (299 px through Xception gives a 10 x 10 latent: 320 px)."""

    def __init__(self, in_ch: int, widths: Sequence[int], mode: str = "transpose",
                 out_act: str = "tanh", out_chans: int = 3):
        super().__init__()
        chans = [in_ch, *(int(w) for w in widths)]
        self.stages = nn.Sequential(*(_up_block(a, b, mode) for a, b in pairwise(chans)))
        self.to_rgb = nn.Conv2d(chans[-1], out_chans, 3, 1, 1)
        self.out_act = nn.Tanh() if out_act == "tanh" else nn.Identity()

    def forward(self, latent: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        y = self.out_act(self.to_rgb(self.stages(latent)))
        if tuple(y.shape[-2:]) != tuple(size):
            # bilinear weights are convex, so a tanh output stays inside [-1, 1]
            y = F.interpolate(y, size=tuple(size), mode="bilinear", align_corners=False)
        return y


def mlp_head(in_features: int, hidden: Sequence[int], num_classes: int, dropout: float) -> nn.Sequential:
    """``[Linear + ReLU] * len(hidden)``, dropout, then the logit layer."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU(inplace=True)]
        width = int(h)
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def classify(detector: Detector, head: nn.Module, latent: torch.Tensor) -> dict[str, torch.Tensor]:
    feat = global_pool(latent)
    cls = head(feat)
    return {"cls": cls, "prob": detector.probability(cls), "feat": feat}


class EncoderClassifier(Detector):
    """A CAE without its decoder (sharing the CAE's modules): what exporters trace."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return classify(self, self.head, self.encoder(x))


@register_model("cae")
class CAE(Detector):
    """Two-branch convolutional autoencoder detector.

    ``forward(x)`` returns ``cls`` (B, num_classes), ``prob`` (B,), ``feat`` (B, C: the
    pooled latent) and, in training mode only, ``recon`` (B, 3, H, W) in the
    normalised input space (tanh: [-1, 1], which mean = std = 0.5 maps [0, 1] pixels
    to; use ``out_act="linear"`` for other normalisations).

    Args:
        num_classes: 2 (softmax, the package's label convention) or 1 (sigmoid, as the
            paper summary's classifier).
        encoder / encoder_cfg: any registered backbone and its arguments; its last
            stage is the latent (``xception`` as in the paper, ``xception-lite``,
            ``tiny``, ``efficientnet_lite0``). Its nominal reduction must be a power of 2.
        head_hidden: widths of the classifier's FC + ReLU layers.
        head_dropout: dropout before the logit layer.
        decoder_widths: output channels of each x2 stage; None: derived from the latent
            width (``default_decoder_widths``), one stage per factor 2 of the reduction.
        upsample: "transpose" (ConvTranspose, as the summary says) or "nearest".
        out_act: "tanh" or "linear" output of the decoder.
    """

    default_meta = {**Detector.default_meta, "input_size": [3, 299, 299]}  # the paper's faces

    def __init__(self, num_classes: int = 2, encoder: str = "xception", encoder_cfg: dict | None = None,
                 head_hidden: Sequence[int] = (256,), head_dropout: float = 0.2,
                 decoder_widths: Sequence[int] | None = None, upsample: str = "transpose",
                 out_act: str = "tanh"):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample: expected one of {UPSAMPLING}, got {upsample!r}")
        if out_act not in OUT_ACTIVATIONS:
            raise ValueError(f"out_act: expected one of {OUT_ACTIVATIONS}, got {out_act!r}")
        self.num_classes = num_classes
        self.encoder = create_backbone(encoder, **(encoder_cfg or {}))
        latent = self.encoder.num_features
        stages = _upsampling_stages(self.encoder.feature_info[-1].reduction, encoder)
        widths = default_decoder_widths(latent, stages) if decoder_widths is None else list(decoder_widths)
        if len(widths) != stages:
            raise ValueError(f"decoder_widths: {encoder!r} reduces by 2**{stages}, so the decoder needs "
                             f"{stages} widths, got {len(widths)}")
        self.head = mlp_head(latent, head_hidden, num_classes, head_dropout)
        self.decoder = ReconDecoder(latent, widths, upsample, out_act)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's reconstruction of ``x`` in any mode (for inspection)."""
        return self.decoder(self.encoder(x), x.shape[-2:])

    def inference_module(self) -> EncoderClassifier:
        """Encoder and classifier only: the decoder's weights stay out of exported graphs."""
        return EncoderClassifier(self.encoder, self.head).train(self.training)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.encoder(x)
        out = classify(self, self.head, latent)
        if self.training:  # training-only branch: absent from eval, export and serving
            out["recon"] = self.decoder(latent, x.shape[-2:])
        return out
