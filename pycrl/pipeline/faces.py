"""Face stage: an RGB frame -> its faces (box, landmarks, aligned crop), largest first."""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from pycrl.faces import Face, FaceDetector


class FaceStage(Protocol):
    """What a face stage is: the faces of one frame, each aligned to the model's crop."""

    def __call__(self, image: np.ndarray) -> list[Face]: ...


class DlibFaces:
    """dlib HOG detection, 5-point landmarks, similarity alignment (DeepfakeBench's crop).

    dlib objects must not be shared between threads: each thread gets its own detector, kept
    in thread-local storage so that it lives and dies with the thread (a worker pool's
    detectors go when the pool does).
    """

    def __init__(self, *, mode: str, size: int, scale: float):
        self.mode, self.size, self.scale = mode, size, scale
        self._local = threading.local()

    def __call__(self, image: np.ndarray) -> list[Face]:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = FaceDetector(mode=self.mode, size=self.size, scale=self.scale)
        return detector(image)
