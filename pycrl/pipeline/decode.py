"""Decode stage: a source (path, bytes or RGB array) -> the sampled frames, in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from pycrl.limits import Limits
from pycrl.media import Frame, load_image, media_kind, sample_frames
from pycrl.media.dali import (
    DaliVideoBatcher,  # imports DALI itself only when a pipeline is built
)


class Decode(Protocol):
    """What a decoder stage is: frames with their index and timestamp, RGB uint8."""

    def __call__(self, source: Any) -> Iterator[Frame]: ...


class MediaDecoder:
    """Images with Pillow (one frame), videos with PyAV (``frames`` sampled by ``sampling``)."""

    def __init__(self, *, frames: int, sampling: str, limits: Limits):
        self.frames, self.sampling, self.limits = frames, sampling, limits

    def __call__(self, source: Any) -> Iterator[Frame]:
        if media_kind(source) == "image":
            yield Frame(index=0, time=0.0, image=load_image(source, self.limits), key_frame=True)
            return
        yield from sample_frames(source, n=self.frames, mode=self.sampling, limits=self.limits)


class DaliDecoder(MediaDecoder):
    """Videos decoded by NVIDIA DALI (on the GPU when ``device`` is "gpu"), uniformly sampled;
    images as `MediaDecoder` does. Faces are then found on host copies of the sampled frames."""

    def __init__(self, *, frames: int, limits: Limits, size: int, device: str):
        super().__init__(frames=frames, sampling="uniform", limits=limits)
        self.size, self.device = size, device
        self._local = threading.local()  # a DALI pipeline is fed from one thread; freed with it

    def __call__(self, source: Any) -> Iterator[Frame]:
        if media_kind(source) == "image":
            yield from super().__call__(source)
            return
        batch = self._batcher().run([source])[0]
        frames, _ = batch.to_numpy()
        rate = batch.info.rate or 0.0
        for index, frame in zip(batch.indices, frames):
            yield Frame(index=int(index), time=float(index) / rate if rate else 0.0,
                        image=np.ascontiguousarray(frame), key_frame=False)

    def _batcher(self):
        if not hasattr(self._local, "batcher"):
            self._local.batcher = DaliVideoBatcher(n=self.frames, batch_size=1, limits=self.limits,
                                                   size=self.size, device=self.device)
        return self._local.batcher
