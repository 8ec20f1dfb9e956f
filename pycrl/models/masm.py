"""MASM / FMSD: multi-artifact subspace fine-tuning with selective layer masking
(Zhang et al., arXiv 2601.01041; docs/methods.md §5). No code is public: this follows
the design of §5.4, built on Effort's SVD residual (§5.3), every choice a flag.

* The chosen layers of a pretrained backbone (EfficientNet-Lite0's 1x1 convs,
  or a CLIP ViT's attention projections as in Effort) are split by SVD into a
  frozen principal (semantic) subspace and K trainable artifact subspaces
  (pycrl.models.subspace).
* Everything else is frozen except the linear head (``train_head``), and on
  request the norm layers (``train_norm``) and the decomposed layers' biases
  (``train_bias``). BatchNorm layers normalise with batch statistics while
  training (``freeze_bn_stats`` keeps the pretrained ones): on data far from
  ImageNet, frozen statistics held a Lite0 back (pycrl/train/configs/masm_synthetic.yaml).
* ``regularisers()`` gives the orthogonality and spectral-consistency terms
  that the ``masm`` loss adds to CE.
* ``after_backward`` feeds the gradients to the selective layer mask
  (pycrl.models.layer_mask) and drops the gradients of masked layers.
* ``inference_module()`` merges the subspaces into plain weights: exported
  models are ordinary Linear/Conv2d networks of the backbone's own size.
"""

from __future__ import annotations

import copy
import fnmatch
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import vit  # noqa: F401  (registers the clip_vit backbone)
from .base import Detector, global_pool
from .layer_mask import GradientSNRMask
from .registry import create_backbone, register_model
from .subspace import (
    SPECTRAL_MODES,
    SubspaceLayer,
    energy_rank,
    group_rank_for,
    layer_rank,
    weight_matrix,
)

# Layers decomposed by default, as fnmatch patterns over module names in the backbone.
DEFAULT_TARGETS: Dict[str, Sequence[str]] = {
    # every pointwise conv: the expansions, the projections and the 320 -> 1280 head conv
    "efficientnet_lite0": ("_blocks.*._expand_conv", "_blocks.*._project_conv", "_conv_head"),
    # Effort: q, k, v and out projections of every attention block
    "clip_vit": ("vision_model.encoder.layers.*.self_attn.*_proj",),
}
# Backbone arguments when none are given: the offline pretrained weights (decomposing
# random weights has no principal subspace to keep).
DEFAULT_BACKBONE_CFG: Dict[str, Dict] = {"efficientnet_lite0": {"pretrained": True}}
NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)


def find_targets(backbone: nn.Module, patterns: Sequence[str]) -> Dict[str, nn.Module]:
    """Dense Linear/Conv2d modules whose names match a pattern, in module order."""
    found = {}
    for name, module in backbone.named_modules():
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            weight_matrix(module)  # TypeError / ValueError for a layer that cannot be split
            found[name] = module
    if not found:
        raise ValueError(f"no backbone module matches {list(patterns)}")
    return found


class PooledClassifier(Detector):
    """backbone -> (pooled) feature -> dropout -> linear head: the plain network
    MASM fine-tunes, and what it exports once its subspaces are merged."""

    def __init__(self, backbone: nn.Module, head: nn.Linear, dropout: float = 0.0):
        super().__init__()
        self.num_classes = head.out_features
        self.backbone, self.head = backbone, head
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        feat = self.backbone(x)
        pooled = feat if feat.dim() == 2 else global_pool(feat)  # ViT: already the class token
        cls = self.head(self.dropout(pooled))
        return {"cls": cls, "prob": self.probability(cls), "feat": feat}


@register_model("masm")
class MASM(PooledClassifier):
    """MASM detector.

    Args:
        backbone, backbone_cfg: a registered backbone and its arguments, e.g.
            ``efficientnet_lite0`` with ``{pretrained: true}`` (its default here), or
            ``clip_vit`` with ``{preset: vit_l14, pretrained: path/to/clip.safetensors}``.
        num_classes, dropout: the linear head on the pooled feature.
        targets: fnmatch patterns of the layers to decompose; None = the
            backbone's default (``DEFAULT_TARGETS``), else every dense Linear / 1x1 conv.
        groups: K, the number of artifact subspaces per layer.
        group_rank: components per group (capped at ``max_tail_fraction`` of the
            layer's rank) when neither ``principal_rank`` nor ``principal_energy`` is set.
        principal_rank: frozen rank r of every layer; the tail ``d - r`` is split evenly.
        principal_energy: r per layer = the fewest components holding this
            fraction of sum(s²); the resolved ranks are recorded as ``group_ranks``.
        group_ranks: per-layer group ranks that override the rules above (written
            by the model itself in energy mode, so a saved model rebuilds).
        train_head, train_norm, train_bias: which parts besides the subspaces train.
        freeze_bn_stats: keep BatchNorm layers in eval mode while training (their
            pretrained statistics); False lets them normalise with batch statistics
            and track the new domain's, their affine parameters still frozen.
        mask_mode, mask_top_k, mask_threshold, mask_every, mask_warmup, mask_momentum:
            the selective layer mask (``GradientSNRMask``; ``off`` updates every layer).
    """

    def __init__(self, backbone: str = "efficientnet_lite0", backbone_cfg: Optional[Dict] = None,
                 num_classes: int = 2, dropout: float = 0.0, targets: Optional[Sequence[str]] = None,
                 groups: int = 4, group_rank: int = 4, principal_rank: Optional[int] = None,
                 principal_energy: Optional[float] = None, max_tail_fraction: float = 0.5,
                 group_ranks: Optional[Dict[str, int]] = None, train_head: bool = True,
                 train_norm: bool = False, train_bias: bool = False, freeze_bn_stats: bool = False,
                 mask_mode: str = "top_k", mask_top_k: float = 0.5, mask_threshold: float = 1.0,
                 mask_every: int = 20, mask_warmup: int = 20, mask_momentum: float = 0.9):
        net_cfg = dict(DEFAULT_BACKBONE_CFG.get(backbone, {}) if backbone_cfg is None else backbone_cfg)
        net = create_backbone(backbone, **net_cfg)
        super().__init__(net, nn.Linear(net.num_features, num_classes), dropout)
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.freeze_bn_stats = bool(freeze_bn_stats)
        self.backbone_cfg = net_cfg
        self.default_meta = {**Detector.default_meta, **getattr(net, "input_meta", {})}
        self.backbone.requires_grad_(False)
        patterns = targets if targets is not None else DEFAULT_TARGETS.get(backbone)
        self.group_ranks: Dict[str, int] = {}
        self._rank_rule: dict[str, Any] = dict(groups=groups, group_rank=group_rank, principal_rank=principal_rank,
                               principal_energy=principal_energy, max_tail_fraction=max_tail_fraction,
                               given=dict(group_ranks or {}))
        for name, layer in self._candidate_layers(patterns).items():
            self.group_ranks[name] = self._resolve_rank(name, layer)
            self.backbone.set_submodule(name, SubspaceLayer(layer, groups, self.group_ranks[name]))
        self._set_trainable(train_head, train_norm, train_bias)
        self.layer_names = list(self.group_ranks)
        self.layer_mask = GradientSNRMask(
            self.layer_names, [sum(p.numel() for p in self.layer_params(i)) for i in range(len(self.layer_names))],
            mask_mode, mask_top_k, mask_threshold, mask_every, mask_warmup, mask_momentum)
        self.train(self.training)

    # -- construction

    def _candidate_layers(self, patterns: Optional[Sequence[str]]) -> Dict[str, nn.Module]:
        """The layers named by ``patterns``; None: every dense Linear / 1x1 conv."""
        if patterns is not None:
            return find_targets(self.backbone, patterns)
        dense: dict[str, nn.Module] = {n: m for n, m in self.backbone.named_modules()
                 if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1
                                                 and m.kernel_size == (1, 1))}
        if not dense:
            raise ValueError("the backbone has no Linear / 1x1 conv layer to decompose: set targets")
        return dense

    def _resolve_rank(self, name: str, layer: nn.Module) -> int:
        rule = self._rank_rule
        if name in rule["given"]:
            return int(rule["given"][name])
        k, d = rule["groups"], layer_rank(layer)
        if rule["principal_energy"] is None:
            return group_rank_for(d, k, rule["group_rank"], rule["principal_rank"], rule["max_tail_fraction"])
        w = weight_matrix(layer)
        if w.is_meta:
            raise ValueError(f"principal_energy resolves ranks from the weights; rebuilding without them "
                             f"needs group_ranks (missing {name!r})")
        r = energy_rank(torch.linalg.svdvals(w.detach().double()), rule["principal_energy"])
        return group_rank_for(d, k, principal_rank=min(r, d - k))  # every group keeps >= 1 component

    def _set_trainable(self, head: bool, norm: bool, bias: bool) -> None:
        for layer in self.subspace_layers():
            for factor in layer.factors():
                factor.requires_grad_(True)
            if layer.base.bias is not None:
                layer.base.bias.requires_grad_(bias)
        for module in self.backbone.modules():
            if isinstance(module, NORMS):
                module.requires_grad_(norm)
        self.head.requires_grad_(head)

    @property
    def pycrl_config(self) -> Dict:
        """The constructor arguments (recorded by the registry) with what they
        resolved to: the backbone arguments in effect and, in energy mode, the
        group ranks read off the spectrum (a saved model's parameter shapes must
        not depend on weights it is rebuilt without)."""
        cfg = dict(self.__dict__.get("_recorded_config", {}))
        cfg["backbone_cfg"] = dict(self.backbone_cfg)
        if cfg.get("principal_energy") is not None:
            cfg["group_ranks"] = dict(self.group_ranks)
        return cfg

    @pycrl_config.setter
    def pycrl_config(self, cfg: Dict) -> None:
        self.__dict__["_recorded_config"] = dict(cfg)

    # -- parts

    def subspace_layers(self) -> List[SubspaceLayer]:
        return [m for m in self.backbone.modules() if isinstance(m, SubspaceLayer)]

    def layer_params(self, index: int) -> List[nn.Parameter]:
        """What the mask switches for one decomposed layer: its trainable tensors."""
        layer = self.backbone.get_submodule(self.layer_names[index])
        return [p for p in layer.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> "MASM":
        super().train(mode)
        if getattr(self, "freeze_bn_stats", False):
            for module in self.backbone.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()  # frozen features keep their pretrained statistics
        return self

    def parameter_counts(self) -> Dict[str, int]:
        """Trainable and total parameters of this model, and of the merged export."""
        merged = self.inference_module()
        return {"trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
                "total": sum(p.numel() for p in self.parameters()),
                "exported": sum(p.numel() for p in merged.parameters())}

    # -- training hooks

    def regularisers(self, spectral: str = "fro") -> Dict[str, torch.Tensor]:
        """Means over the decomposed layers of the orthogonality terms between
        and within artifact subspaces and of the spectral-consistency term."""
        if spectral not in SPECTRAL_MODES:
            raise ValueError(f"spectral must be one of {SPECTRAL_MODES}, got {spectral!r}")
        layers = self.subspace_layers()
        between, within = zip(*(layer.orthogonality() for layer in layers))
        spec = [layer.spectral(spectral) for layer in layers]
        return {"orth_between": torch.stack(between).mean(), "orth_within": torch.stack(within).mean(),
                "spec": torch.stack(spec).mean()}

    def after_backward(self, step: int) -> Optional[Dict[str, float]]:
        """Update the gradient statistics, recompute the mask when due, and set
        the gradients of masked layers to None so the optimiser skips them."""
        if self.layer_mask.mode == "off":
            return None
        grads = []
        for i in range(len(self.layer_names)):
            grads.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                                    for p in self.layer_params(i)]))
        log = self.layer_mask.update(step, grads)
        for i in self.layer_mask.masked():
            for p in self.layer_params(i):
                p.grad = None
        return log

    # -- export

    def inference_module(self) -> PooledClassifier:
        """A plain copy with every subspace merged into its layer's weight."""
        backbone = copy.deepcopy(self.backbone)
        for name in self.layer_names:
            layer = backbone.get_submodule(name)
            assert isinstance(layer, SubspaceLayer)  # layer_names are the decomposed layers
            backbone.set_submodule(name, layer.merged())
        plain = PooledClassifier(backbone, copy.deepcopy(self.head), self.dropout_rate)
        plain.default_meta = dict(self.default_meta)
        return plain.requires_grad_(False).train(self.training)

    @property
    def dropout_rate(self) -> float:
        return self.dropout.p if isinstance(self.dropout, nn.Dropout) else 0.0
