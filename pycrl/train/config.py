"""Training configs: YAML files over built-in defaults, plus ``key=value`` overrides.

A config is a nested dict with the sections of :data:`DEFAULTS`. ``model`` and ``loss`` are
open: ``name`` picks the registered class and every other key is a constructor argument.
The other sections are closed: an unknown key is an error that suggests the nearest known
one, so a typo never silently trains with a default.

A file may start from another with ``base: other.yaml`` (relative to the file, else a shipped
config of that name); its keys
are merged over the base's, mappings key by key. Overrides use dotted keys and YAML values:
``optim.lr=1e-3``, ``data.train.frame_num=8``, ``model.num_classes=1``, ``train.amp=off``.
A ``model`` or ``loss`` section that names another class than the one below it (in a base
file, or by a ``loss.name=...`` override) starts afresh: the other class's arguments would
not fit it.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

# Every key a config may set, with its default. Where a default was inferred rather than
# taken from RECCE/DeepfakeBench, the shipped YAML files say so next to the key.
DEFAULTS: dict[str, Any] = {
    "model": {"name": "recce"},
    "loss": {"name": "recce"},
    "data": {
        "resolution": 256,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "augmentation": False,     # DeepfakeBench use_data_augmentation (training split only)
        "data_aug": {},            # DeepfakeBench data_aug overrides
        "batch_size": 32,
        "eval_batch_size": 64,
        "workers": 2,
        "cache": False,            # keep decoded samples in memory (sources without randomness only)
        "train": None,             # a source (see train.engine.data) or a list of sources
        "val": None,
        "test": None,              # evaluated once at the end, reported, never used to select
    },
    "optim": {
        "type": "adam",            # adam | adamw
        "lr": 2.0e-4,
        "betas": [0.9, 0.999],
        "eps": 1.0e-8,
        "weight_decay": 1.0e-5,
        "amsgrad": False,
    },
    "scheduler": {
        "type": "none",            # none | step | cosine
        "interval": "epoch",       # what step_size / t_max count: epoch | step
        "step_size": 10,
        "gamma": 0.5,
        "t_max": None,             # cosine period; None: the whole run
        "eta_min": 0.0,
    },
    "train": {
        "epochs": 10,
        "max_steps": None,         # stop after this many optimiser steps in all
        "time_limit_minutes": None,
        "grad_clip": None,         # max global gradient norm; None: no clipping
        "amp": "auto",             # auto (on where the device is CUDA) | on | off
        "amp_dtype": "float16",    # float16 | bfloat16
        "device": "auto",          # auto | cpu | cuda | cuda:N
        "seed": 1024,
        "deterministic": True,
        "eval_every": None,        # validation every N steps; None: at the end of every epoch
        "select_metric": "auc",    # validation metric that picks the best weights
        "checkpoint_every": None,  # steps; a checkpoint is also written after every validation
        "log_every": 10,
        "progress": True,
        "threads": None,           # torch intra-op threads on CPU; None: torch's default
    },
    "threshold": {
        "mode": "eer",             # eer | fpr | fixed
        "target_fpr": 0.01,        # for mode fpr
        "value": 0.5,              # for mode fixed
    },
    "output": {
        "dir": "runs/default",     # checkpoints, logs, and the model folder
        "model_dir": None,         # the exported model folder; None: <dir>/model
        "resume": None,            # a checkpoint file, or "auto" for <dir>/checkpoints/last.pt
    },
}

OPEN_SECTIONS = ("model", "loss")


class ConfigError(ValueError):
    """A config that cannot be used: unknown key, bad value or unreadable file."""


def _renamed(old: Any, new: Any) -> bool:
    return isinstance(old, Mapping) and isinstance(new, Mapping) and "name" in new and new["name"] != old.get("name")


def deep_merge(base: Mapping, extra: Mapping, top: bool = True, section: str | None = None) -> dict:
    """``extra`` over ``base``: mappings merge key by key, anything else replaces; at the top
    level a renamed open section replaces the old one, and a data source of another ``type``
    (another layout, with other keys) replaces the base's source."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if top and key in OPEN_SECTIONS and _renamed(out.get(key), value):
            out[key] = copy.deepcopy(dict(value))
        elif (section == "data" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
              and "type" in value and value.get("type") != out[key].get("type")):
            out[key] = copy.deepcopy(dict(value))
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value, top=False, section=key if top else None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path, _seen: tuple = ()) -> dict:
    """A config file with its ``base:`` chain resolved (bases first)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"config base cycle: {' -> '.join(map(str, _seen + (path,)))}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    base = doc.pop("base", None)
    if base is None:
        return doc
    beside = path.parent / base  # next to the file; else a shipped config of that name
    return deep_merge(read_yaml(beside if beside.is_file() else resolve_config(base), _seen + (path,)), doc)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value parsed as YAML, so 1e-3, true, [1, 2] work)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected dotted.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {exc}") from exc
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
    return [k.strip() for k in key.split(".")], value


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return s.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity")


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] in OPEN_SECTIONS and keys[1:] == ["name"] and _renamed(cfg.get(keys[0]), {"name": value}):
            cfg[keys[0]] = {}
        node = cfg
        for k in keys[:-1]:
            if node.get(k) is None:
                node[k] = {}
            if not isinstance(node[k], dict):
                raise ConfigError(f"override {text!r}: {k!r} is not a mapping")
            node = node[k]
        node[keys[-1]] = value
    return cfg


def _fix_numbers(node: Any) -> Any:
    """YAML 1.1 (PyYAML) reads ``2e-4`` as a string; configs mean the number."""
    if isinstance(node, dict):
        return {k: _fix_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_numbers(v) for v in node]
    if isinstance(node, str) and _looks_numeric(node) and any(c in node for c in "eE"):
        return float(node)
    return node


def validate(cfg: Mapping) -> None:
    """Unknown sections or keys raise ConfigError with the closest known name."""
    for section, value in cfg.items():
        if section not in DEFAULTS:
            raise ConfigError(_unknown(f"section {section!r}", section, DEFAULTS))
        if not isinstance(value, Mapping):
            raise ConfigError(f"{section}: expected a mapping, got {type(value).__name__}")
        if section in OPEN_SECTIONS:
            if not isinstance(value.get("name"), str):
                raise ConfigError(f"{section}.name must name a registered {section}")
            continue
        for key in value:
            if key not in DEFAULTS[section]:
                raise ConfigError(_unknown(f"key {section}.{key}", key, DEFAULTS[section]))
    if cfg["threshold"]["mode"] not in ("eer", "fpr", "fixed"):
        raise ConfigError(f"threshold.mode must be eer, fpr or fixed, got {cfg['threshold']['mode']!r}")


def _unknown(what: str, key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {what}{hint}"


#: The configs shipped with pycrl (package data), addressable by name: ``--config crl``.
SHIPPED = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def resolve_config(name_or_path: str | Path) -> Path:
    """A config file: an existing path as given, else a shipped config by name (``crl``,
    ``crl_faces.yaml``); a `ConfigError` listing the shipped ones when it is neither."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".yaml"):
        shipped = SHIPPED / f"{path.stem}.yaml"
        if shipped.is_file():
            return shipped
    raise ConfigError(f"config {str(name_or_path)!r}: no such file, and not a shipped config "
                      f"({', '.join(shipped_configs())})")


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict:
    """DEFAULTS <- file (with its bases) <- overrides, validated. ``path`` may name a shipped
    config (see `resolve_config`)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        cfg = deep_merge(cfg, read_yaml(resolve_config(path)))
    cfg = _fix_numbers(apply_overrides(cfg, overrides))
    validate(cfg)
    return cfg


def dump_config(cfg: Mapping) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False, default_flow_style=None)


def constructor_args(section: Mapping) -> tuple[str, dict]:
    """(name, keyword arguments) of an open section such as ``model`` or ``loss``."""
    args = dict(section)
    return args.pop("name"), args
