"""`ModelCard`: a model folder's ``model.json``, read once, validated, typed.

Everything that needs a model's input size, normalisation, crop scale, threshold, operating
points, labels or real-feature centre reads it here, so each default lives in one place and a
malformed folder fails at load with the field named, not on the first input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from safetensors import safe_open

from pycrl import model_folder
from pycrl.errors import ModelFolderError, OptionError
from pycrl.fileio import check_regular

#: Largest input side a model card may declare: a 1024² crop already costs ~12 MB per
#: face in float32; beyond that a card is a mistake or an attack on memory.
MAX_INPUT_SIDE = 1024
MIN_INPUT_SIDE = 16
DEFAULT_INPUT_SIZE = (3, 256, 256)
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)
#: DeepfakeBench's crop: the aligned face box enlarged 1.3 times.
DEFAULT_CROP_SCALE = 1.3
DEFAULT_THRESHOLD = 0.5
DEFAULT_LABELS = MappingProxyType({"0": "real", "1": "fake"})
#: The operating point a card without ``operating_points`` is decided at.
DEFAULT_POINT = "threshold"
TENSORS_NAME = "model.safetensors"


@dataclass(frozen=True)
class Decision:
    """Where scores become labels: ``score >= threshold`` is "fake"."""

    point: str  #: the operating point's name ("eer", "fpr=0.01", "custom" for a given threshold)
    threshold: float
    notice: str | None = None  #: set when the point asked for was unavailable and another was used

    def label(self, score: float) -> Literal["real", "fake"]:
        return "fake" if score >= self.threshold else "real"


@dataclass(frozen=True)
class ModelCard:
    """The parsed, checked ``model.json`` of a model folder."""

    folder: Path
    name: str  #: the model id recorded in every result
    architecture: str
    config: Mapping[str, Any]
    input_size: tuple[int, int, int]  #: (C, H, W)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_scale: float
    threshold: float  #: the decision threshold (the card's chosen operating point)
    decision_point: str  #: the name of that operating point ("eer", "fpr=0.05", ...)
    operating_points: Mapping[str, float]  #: name -> threshold, the decision point included
    labels: Mapping[str, str]
    tensors: Path  #: the weights file, always inside the folder
    doc: Mapping[str, Any] = field(repr=False)  #: the whole model.json, read-only

    @classmethod
    def read(cls, model: str | os.PathLike[str]) -> "ModelCard":
        """The card of a named model ("default") or a model folder."""
        folder = model_folder.resolve(model)
        return cls.from_doc(folder, model_folder.read_json(folder))

    @classmethod
    def from_doc(cls, folder: Path, doc: Mapping[str, Any]) -> "ModelCard":
        where = folder / model_folder.JSON_NAME
        size = _input_size(where, doc.get("input_size", DEFAULT_INPUT_SIZE))
        threshold = _unit(where, "decision_threshold", doc.get("decision_threshold", DEFAULT_THRESHOLD))
        points = {str(k): _unit(where, f"operating_points[{k!r}]", v)
                  for k, v in _mapping(where, "operating_points", doc.get("operating_points", {})).items()}
        point = str(doc.get("decision_point") or DEFAULT_POINT)
        points.setdefault(point, threshold)
        return cls(
            folder=folder,
            name=str(doc.get("name") or f"{doc['architecture']}:{folder.name}"),
            architecture=str(doc["architecture"]),
            config=MappingProxyType(dict(_mapping(where, "config", doc.get("config", {})))),
            input_size=size,
            mean=_triple(where, "mean", doc.get("mean", DEFAULT_MEAN), positive=False),
            std=_triple(where, "std", doc.get("std", DEFAULT_STD), positive=True),
            crop_scale=_finite(where, "crop_scale", doc.get("crop_scale", DEFAULT_CROP_SCALE), low=0.5, high=4.0),
            threshold=threshold,
            decision_point=point,
            operating_points=MappingProxyType(points),
            labels=MappingProxyType({str(k): str(v) for k, v in
                                     _mapping(where, "labels", doc.get("labels", DEFAULT_LABELS)).items()}),
            tensors=_tensors_file(where, folder, doc.get("tensors", {})),
            doc=MappingProxyType(dict(doc)),
        )

    @property
    def side(self) -> int:
        """The square input side in pixels."""
        return self.input_size[-1]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std as float32 (1, 3, 1, 1) arrays, ready to normalise an NCHW batch."""
        return (np.asarray(self.mean, np.float32).reshape(1, 3, 1, 1),
                np.asarray(self.std, np.float32).reshape(1, 3, 1, 1))

    @property
    def stores_operating_points(self) -> bool:
        """Whether the folder stores thresholds at named operating points (beyond its single one)."""
        return bool(self.doc.get("operating_points"))

    def decision(self, point: str | None = None, threshold: float | None = None) -> "Decision":
        """The threshold a verdict is decided at, and its name.

        ``threshold`` (a number) wins and is named "custom"; else ``point`` ("eer", "fpr=0.01",
        ...; ``None``: the card's decision point). A card that stores no operating points falls
        back to its single threshold, with a notice saying so; a card that stores some refuses a
        point it lacks (`OptionError` listing those it has)."""
        if threshold is not None:
            if point is not None:
                raise OptionError("threshold and operating_point: give one, not both")
            return Decision("custom", float(threshold))
        if point is None or point == self.decision_point:
            return Decision(self.decision_point, self.threshold)
        if point in self.operating_points:
            return Decision(point, self.operating_points[point])
        if not self.stores_operating_points:
            return Decision(self.decision_point, self.threshold,
                            notice=f"operating point {point!r} unavailable: {self.name} stores no operating points, "
                                   f"so its single threshold ({self.threshold:.4f}) was used")
        raise OptionError(f"operating_point: {point!r} is not stored in {self.name}; "
                          f"choose from {', '.join(sorted(self.operating_points))}")

    def real_centre(self) -> np.ndarray | None:
        """The stored centre of real-face embeddings (a buffer named ``*real_centre``), if the
        model has one and it was ever updated (an all-zero or non-finite centre is none)."""
        if not self.tensors.exists():
            return None
        check_regular(self.tensors, ModelFolderError)
        try:
            with safe_open(str(self.tensors), framework="numpy") as f:
                keys = [k for k in f.keys() if k.endswith("real_centre")]
                if not keys:
                    return None
                centre = np.asarray(f.get_tensor(keys[0]), dtype=np.float32).reshape(-1)
        except Exception as err:  # safetensors' own error types: a damaged file is the folder's fault
            raise ModelFolderError(f"{self.tensors}: not a readable safetensors file "
                                   f"({type(err).__name__}: {_first_line(err)})") from err
        return centre if np.isfinite(centre).all() and np.abs(centre).sum() > 0 else None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def _mapping(where: Path, key: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise ModelFolderError(f"{where}: {key} must be an object, got {type(value).__name__}")
    return value


def _number(where: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFolderError(f"{where}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ModelFolderError(f"{where}: {key} must be finite, got {value!r}")
    return float(value)


def _finite(where: Path, key: str, value: Any, *, low: float, high: float) -> float:
    v = _number(where, key, value)
    if not low <= v <= high:
        raise ModelFolderError(f"{where}: {key} must lie within [{low:g}, {high:g}], got {v!r}")
    return v


def _unit(where: Path, key: str, value: Any) -> float:
    return _finite(where, key, value, low=0.0, high=1.0)


def _triple(where: Path, key: str, value: Any, *, positive: bool) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ModelFolderError(f"{where}: {key} must be a list of 3 numbers (R, G, B), got {value!r}")
    out = tuple(_number(where, f"{key}[{i}]", v) for i, v in enumerate(value))
    if positive and min(out) <= 0:
        raise ModelFolderError(f"{where}: {key} must be positive, got {list(out)}")
    return out  # type: ignore[return-value]


def _tensors_file(where: Path, folder: Path, entry: Any) -> Path:
    """The weights file a card names: a plain file name inside the folder, never a path that
    leads out of it (a card from a stranger must not make pycrl open other files)."""
    name = _mapping(where, "tensors", entry).get("file", TENSORS_NAME)
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise ModelFolderError(f"{where}: tensors.file must be a file name inside the model folder, got {name!r}")
    path = folder / name
    if path.exists():  # a FIFO or device here would hang or flood whatever opens it next
        check_regular(path, ModelFolderError)
    return path


def _input_size(where: Path, value: Any) -> tuple[int, int, int]:
    ok = (isinstance(value, (list, tuple)) and len(value) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    if not ok:
        raise ModelFolderError(f"{where}: input_size must be [3, H, W] integers, got {value!r}")
    c, h, w = value
    if c != 3 or h != w or not MIN_INPUT_SIDE <= h <= MAX_INPUT_SIDE:
        raise ModelFolderError(f"{where}: input_size must be [3, S, S] with {MIN_INPUT_SIDE} <= S <= "
                               f"{MAX_INPUT_SIDE}, got {list(value)}")
    return (c, h, w)
