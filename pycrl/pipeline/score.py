"""Score stage: aligned face crops -> fake probabilities, compactness and heatmaps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pycrl import ops
from pycrl.model_card import ModelCard
from pycrl.runtime.interface import Backend


@dataclass
class Scores:
    """The score stage's output for N crops."""

    prob: np.ndarray  #: (N,) fake probability
    compactness: np.ndarray | None = None  #: (N,) distance to the real centre (larger: less real-like)
    heatmap: np.ndarray | None = None  #: (N, S, S) pooled |reconstruction - input|


class ScoreStage:
    """Runs a backend over crops in batches and adds what the fused kernels derive from its
    outputs: the distance of each embedding to the model's real centre (``feat``) and the
    pooled reconstruction difference (``recon``)."""

    def __init__(self, net: Backend, card: ModelCard, *, batch_size: int, heatmap_size: int = 0):
        self.net, self.card = net, card
        self.batch_size, self.heatmap_size = batch_size, heatmap_size
        self.side = card.side
        self.mean, self.std = card.mean_std()
        self.centre = card.real_centre()

    def prepare(self, faces) -> np.ndarray:
        """Face crops as the network's input: float32 NCHW, normalised.

        Takes uint8 RGB crops (an (N,H,W,3) array or a list of (H,W,3) arrays, resized to the
        model's input size when needed) or a float NCHW array already normalised with the
        model's mean/std.
        """
        s = self.side
        if isinstance(faces, np.ndarray) and faces.dtype != np.uint8:
            if faces.ndim != 4 or faces.shape[1:] != (3, s, s):
                raise ValueError(f"faces: expected float (N, 3, {s}, {s}) normalised crops, "
                                 f"got {faces.dtype} {faces.shape}")
            return np.ascontiguousarray(faces, dtype=np.float32)
        if isinstance(faces, np.ndarray):
            if faces.ndim == 3:
                faces = faces[None]
            if faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"faces: expected uint8 RGB crops (N, H, W, 3), got shape {faces.shape}")
            crops = list(faces)
        elif isinstance(faces, (list, tuple)):
            crops = list(faces)
        else:
            raise TypeError(f"faces: expected a numpy array or a list of arrays, got {type(faces).__name__}")
        out = np.empty((len(crops), 3, s, s), np.float32)
        for i, c in enumerate(crops):
            c = np.asarray(c)
            if c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
                raise ValueError(f"faces[{i}]: expected an RGB uint8 (H, W, 3) crop, got {c.dtype} {c.shape}")
            if c.shape[:2] != (s, s):
                c = cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA if c.shape[0] > s else cv2.INTER_LINEAR)
            out[i] = c.transpose(2, 0, 1)
        out /= 255.0
        out -= self.mean
        out /= self.std
        return out

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs for a prepared batch, plus ``compactness`` (distance to the real
        centre) and ``heatmap`` (pooled |recon - x|) where available."""
        outs: dict[str, list] = {}
        for i in range(0, len(x), self.batch_size):
            for k, v in self.net.run(x[i : i + self.batch_size]).items():
                outs.setdefault(k, []).append(v)
        res = {k: np.concatenate(v) for k, v in outs.items()} if outs else {"prob": np.zeros(0, np.float32)}
        if self.centre is not None and "feat" in res and res["feat"].shape[1] == self.centre.size and len(x):
            feat = np.ascontiguousarray(res["feat"], np.float32)
            res["compactness"] = ops.prototype_distance(feat, self.centre[None])[0]
        if self.heatmap_size and "recon" in res and len(x):
            recon = np.ascontiguousarray(res["recon"], np.float32)
            side = min(self.heatmap_size, recon.shape[-1])
            res["heatmap"] = ops.recon_diff(x, [recon], pool=side).pooled
        return res

    def __call__(self, crops) -> Scores:
        out = self.infer(self.prepare(crops))
        return Scores(prob=out["prob"], compactness=out.get("compactness"), heatmap=out.get("heatmap"))
