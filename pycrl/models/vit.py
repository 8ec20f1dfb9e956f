"""A compact CLIP vision transformer whose parameter names follow Hugging Face
``CLIPVisionModel`` (``vision_model.embeddings.patch_embedding.weight``,
``vision_model.encoder.layers.N.self_attn.q_proj.weight``, ...), so a user's
safetensors file of HF CLIP weights loads by key. Nothing is downloaded: the
weights are the user's file (``pretrained="path/to/model.safetensors"``).

The output is HF's ``pooler_output``: the post-layernorm class token, which
Effort's head (docs/methods.md §5.3) reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Dict, Mapping, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from pycrl.checkpoint import CheckpointError, check_and_load, read_state_dict

from .base import Backbone, FeatureInfo
from .registry import register_backbone

# HF CLIPVisionConfig of the OpenAI checkpoints (quick_gelu, layer-norm eps 1e-5).
PRESETS: Dict[str, Dict[str, int]] = {
    "vit_b16": {"width": 768, "layers": 12, "heads": 12, "patch": 16, "image_size": 224, "mlp_dim": 3072},
    "vit_b32": {"width": 768, "layers": 12, "heads": 12, "patch": 32, "image_size": 224, "mlp_dim": 3072},
    "vit_l14": {"width": 1024, "layers": 24, "heads": 16, "patch": 14, "image_size": 224, "mlp_dim": 4096},
    "vit_l14_336": {"width": 1024, "layers": 24, "heads": 16, "patch": 14, "image_size": 336, "mlp_dim": 4096},
}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PREFIX = "vision_model."
# The key that locates the vision tower in a state dict, whatever prefix it has.
ANCHOR = "embeddings.patch_embedding.weight"
# Older transformers releases saved this index buffer; it holds no weights.
IGNORED = ("embeddings.position_ids",)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"quick_gelu": quick_gelu, "gelu": F.gelu}


class ClipEmbeddings(nn.Module):
    def __init__(self, width: int, patch: int, image_size: int, in_chans: int):
        super().__init__()
        self.image_size, self.patch = image_size, patch
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.patch_embedding = nn.Conv2d(in_chans, width, patch, patch, bias=False)
        self.position_embedding = nn.Embedding((image_size // patch) ** 2 + 1, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"this CLIP ViT is built for {self.image_size} px inputs (its position "
                             f"embeddings), got {tuple(x.shape[-2:])}")
        tokens = self.patch_embedding(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return torch.cat([cls, tokens], dim=1) + self.position_embedding.weight


class ClipAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads, self.scale = heads, (width // heads) ** -0.5
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split(self.q_proj(x) * self.scale)
        k, v = self._split(self.k_proj(x)), self._split(self.v_proj(x))
        attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(x.shape)
        return self.out_proj(out)


class ClipMLP(nn.Module):
    def __init__(self, width: int, mlp_dim: int, act: str):
        super().__init__()
        self.act = ACTIVATIONS[act]
        self.fc1, self.fc2 = nn.Linear(width, mlp_dim), nn.Linear(mlp_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClipEncoderLayer(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, width: int, heads: int, mlp_dim: int, act: str, eps: float):
        super().__init__()
        self.self_attn = ClipAttention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = ClipMLP(width, mlp_dim, act)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, layers: int, **block):
        super().__init__()
        self.layers = nn.ModuleList(ClipEncoderLayer(**block) for _ in range(layers))


class ClipVisionTransformer(nn.Module):
    """HF ``CLIPVisionTransformer`` layout (``pre_layrnorm`` is HF's spelling)."""

    def __init__(self, width: int, layers: int, heads: int, patch: int, image_size: int, mlp_dim: int,
                 act: str, eps: float, in_chans: int):
        super().__init__()
        self.embeddings = ClipEmbeddings(width, patch, image_size, in_chans)
        self.pre_layrnorm = nn.LayerNorm(width, eps=eps)
        self.encoder = ClipEncoder(layers, width=width, heads=heads, mlp_dim=mlp_dim, act=act, eps=eps)
        self.post_layernorm = nn.LayerNorm(width, eps=eps)


def resolve_geometry(preset: Optional[str], **given) -> Dict[str, int]:
    """The preset's sizes with every explicitly given (non-None) value on top."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown CLIP ViT preset {preset!r}; presets: {sorted(PRESETS)}")
    sizes = dict(PRESETS[preset]) if preset else {}
    sizes.update({k: int(v) for k, v in given.items() if v is not None})
    missing = [k for k in PRESETS["vit_b16"] if k not in sizes]
    if missing:
        raise ValueError(f"CLIP ViT without a preset needs {missing}")
    if sizes["image_size"] % sizes["patch"]:
        raise ValueError(f"image_size {sizes['image_size']} is not a multiple of patch {sizes['patch']}")
    return sizes


@register_backbone("clip_vit")
class ClipViT(Backbone):
    """CLIP vision tower; stages ``embed`` (tokens after pre-LN), ``layer1`` ..
    ``layerN`` (token sequences (B, 1+n, width)) and ``pool`` ((B, width),
    HF's ``pooler_output``).

    Args:
        preset: ``vit_b16`` | ``vit_b32`` | ``vit_l14`` | ``vit_l14_336``, or None
            to give every size explicitly; explicit sizes override the preset.
        width, layers, heads, patch, image_size, mlp_dim: the geometry.
        act: ``quick_gelu`` (OpenAI CLIP) | ``gelu``.
        pretrained: path of a HF CLIP state dict (safetensors or torch file) of
            ``CLIPVisionModel`` or ``CLIPModel`` (its ``vision_model.*`` part is
            used); False = random init. There are no bundled CLIP weights.
    """

    input_meta = {"mean": CLIP_MEAN, "std": CLIP_STD}

    def __init__(self, preset: Optional[str] = "vit_b16", width: Optional[int] = None,
                 layers: Optional[int] = None, heads: Optional[int] = None, patch: Optional[int] = None,
                 image_size: Optional[int] = None, mlp_dim: Optional[int] = None, act: str = "quick_gelu",
                 layer_norm_eps: float = 1e-5, in_chans: int = 3,
                 pretrained: Union[bool, str, os.PathLike] = False):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        g = resolve_geometry(preset, width=width, layers=layers, heads=heads, patch=patch,
                             image_size=image_size, mlp_dim=mlp_dim)
        self.geometry = g
        self.vision_model = ClipVisionTransformer(act=act, eps=layer_norm_eps, in_chans=in_chans, **g)
        self.feature_info = ([FeatureInfo("embed", g["width"], g["patch"])]
                             + [FeatureInfo(f"layer{i + 1}", g["width"], g["patch"]) for i in range(g["layers"])]
                             + [FeatureInfo("pool", g["width"], g["image_size"])])
        self.input_meta = {**self.input_meta, "input_size": [in_chans, g["image_size"], g["image_size"]]}
        if pretrained is True:
            raise ValueError("clip_vit ships no weights: pass pretrained=<path of a Hugging Face CLIP "
                             "safetensors file> (CLIPVisionModel or CLIPModel)")
        if pretrained:
            load_hf_clip(self, pretrained)

    def run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        vm = self.vision_model
        if name == "embed":
            return vm.pre_layrnorm(vm.embeddings(x))
        if name == "pool":
            return vm.post_layernorm(x[:, 0])
        return vm.encoder.layers[int(name[len("layer"):]) - 1](x)


def hf_vision_state(state: Mapping[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
    """The vision tower of a HF CLIP state dict, keyed ``vision_model.*``.

    ``CLIPModel`` files (and ``CLIPVisionModel`` ones from transformers < 5) prefix the
    tower with ``vision_model.``; transformers 5 saves ``CLIPVisionModel`` without it.
    Any single prefix is accepted; the text tower, projections and ``logit_scale`` of a
    full ``CLIPModel`` are left out.
    """
    prefixes = sorted({k[:-len(ANCHOR)] for k in state if k.endswith(ANCHOR)})
    if len(prefixes) != 1:
        what = f"several vision towers {prefixes}" if prefixes else f"no '{ANCHOR}' key"
        raise CheckpointError(f"{source}: {what}, so not one Hugging Face CLIPVisionModel / CLIPModel "
                              f"state dict (its first keys: {sorted(state)[:5]}); expected e.g. "
                              f"'{PREFIX}{ANCHOR}'")
    prefix = prefixes[0]
    return {PREFIX + k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and k[len(prefix):] not in IGNORED}


def load_hf_clip(model: ClipViT, source: Union[str, os.PathLike, Mapping[str, torch.Tensor]]) -> ClipViT:
    """Load HF CLIP vision weights into ``model`` by key: every key and shape must fit."""
    name = "<state dict>" if isinstance(source, Mapping) else os.fspath(source)
    state = hf_vision_state(read_state_dict(source), name)
    try:
        check_and_load(model, state, source=name, assign=any(p.is_meta for p in model.parameters()))
    except CheckpointError as err:
        raise CheckpointError(f"{err} (the model is a CLIP ViT with {model.geometry}: pick the preset or "
                              f"sizes of the checkpoint)", err.missing, err.unexpected, err.mismatched) from err
    return model
