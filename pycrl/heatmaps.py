"""Pictures for people: a face crop with its reconstruction-difference map laid over it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB crop blended with a colour-mapped heatmap (red = poorly reconstructed).

    The map is scaled by a fixed range (0 to 1 in normalised pixel units,
    i.e. half the full [-1, 1] swing) rather than per image, so colours are
    comparable between faces.
    """
    h, w = crop.shape[:2]
    m = cv2.resize(np.asarray(heatmap, np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    m = np.clip(m, 0.0, 1.0)
    colour = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return cv2.addWeighted(crop, 1.0 - alpha, colour, alpha, 0.0)


def write_overlays(result, folder: Path) -> list[Path]:
    """One PNG per scored face of a Result that kept crops and heatmaps."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(result.source).stem or "input"
    written = []
    for k, face in enumerate(result.faces):
        if face.crop is None or face.heatmap is None:
            continue
        path = folder / f"{stem}_f{face.frame_index:06d}_{k:02d}_p{face.score:.2f}.png"
        cv2.imwrite(str(path), overlay(face.crop, face.heatmap)[..., ::-1])
        written.append(path)
    return written
