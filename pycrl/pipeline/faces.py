"""Face stage: an RGB frame -> its faces (box, landmarks, aligned crop), largest first.

Two stages: `YuNetFaces` (the default: YuNet's CNN on a pycrl backend, then dlib's 5-point
landmarks and DeepfakeBench's alignment) and `DlibFaces` (dlib's HOG detector, DeepfakeBench's
own). A stage may also offer ``batch(images)``, the faces of several frames in one call, which
`Pipeline` uses to run a detector network over a chunk of a video's frames at once.
"""

from __future__ import annotations

import threading
from typing import Protocol, Sequence

import numpy as np

from pycrl.faces import Face, FaceDetector


class FaceStage(Protocol):
    """What a face stage is: the faces of one frame, each aligned to the model's crop."""

    def __call__(self, image: np.ndarray) -> list[Face]: ...


class DlibFaces:
    """dlib HOG detection, 5-point landmarks, similarity alignment (DeepfakeBench's crop).

    dlib objects must not be shared between threads: each thread gets its own detector, kept
    in thread-local storage so that it lives and dies with the thread (a worker pool's
    detectors go when the pool does). ``min_size`` drops faces whose box is smaller (its
    longer side, frame pixels); HOG finds none under 40 px at its default settings anyway.
    """

    def __init__(self, *, mode: str, size: int, scale: float, min_size: int = 0):
        self.mode, self.size, self.scale, self.min_size = mode, size, scale, min_size
        self._local = threading.local()

    def __call__(self, image: np.ndarray) -> list[Face]:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = FaceDetector(mode=self.mode, size=self.size, scale=self.scale)
        boxes = [b for b in detector.detect(image) if max(b.box[2] - b.box[0], b.box[3] - b.box[1]) >= self.min_size]
        return [detector.align(image, b) for b in boxes]


class YuNetFaces:
    """YuNet detection (pycrl/assets/yunet on ONNX Runtime or OpenVINO), dlib's 5-point
    landmarks in the box HOG would have drawn, the same alignment as `DlibFaces`
    (``landmarks="yunet"``: YuNet's own five points instead). One detector serves every
    thread (`pycrl.faces.yunet.YuNetDetector` is thread-safe); ``batch`` runs YuNet once over
    up to ``batch_frames`` frames."""

    #: Frames per YuNet call when `Pipeline` batches a video's frames. Measured on 2 cores
    #: (ONNX Runtime, 640x384, 32 frames, medians of 7 interleaved rounds): batches of 1, 2 and
    #: 4 take 151, 149 and 159 ms, 8 take 173 ms and 32 take 210 ms (a batch's activations
    #: outgrow the caches). Larger batches pay off only with more cores per call.
    batch_frames = 4

    def __init__(self, *, mode: str, size: int, scale: float, min_size: int, min_score: float,
                 landmarks: str = "dlib5", backend: str = "auto", threads: int | None = None):
        from pycrl.faces.yunet import YuNetDetector

        self.detector = YuNetDetector(mode=mode, size=size, scale=scale, min_face=min_size, min_score=min_score,
                                      landmarks=landmarks, backend=backend, threads=threads)

    def __call__(self, image: np.ndarray) -> list[Face]:
        return self.detector(image)

    def batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self.detector.batch(images)

    def close(self) -> None:
        self.detector.close()
