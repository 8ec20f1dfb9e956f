"""`pycrl.Detector`: media in, calibrated fake scores out.

    det = pycrl.Detector()                  # the bundled default model, or a model folder
    det.score_batch(crops)                  # aligned face crops -> fake probabilities
    det.score_image("photo.jpg")            # -> Result
    for r in det.score_videos(paths):       # streamed in input order; decode, face
        print(r.to_dict())                  # detection and inference overlap

A thin façade over `pycrl.pipeline`: the model card says what the model needs, the scoring
options say how to score, and the pipeline's stages do the work. Nothing here imports torch
unless backend="torch".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pycrl.model_card import ModelCard
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.options import ScoringOptions
from pycrl.pipeline import Pipeline, build_pipeline
from pycrl.results import Result


class Detector:
    """Scores faces in images and videos with a pycrl model folder.

    model: "default" (the bundled real-face model, see the README's model card) or a model folder.
    options: a `pycrl.options.ScoringOptions`; keyword arguments override its fields:
      backend "auto" | "openvino" | "onnxruntime" | "torch" | "tensorrt"; device "auto" | "cpu" |
      "cuda"; precision "auto" | "f32" | "bf16" | "fp16"; frames (per video) and sampling
      ("uniform": evenly over the whole video, as DeepfakeBench; "keyframes": key frames only,
      cheap); decoder "auto" | "pyav" | "dali" (NVIDIA DALI: GPU decode when the device is CUDA,
      else DALI's CPU decoder, which reads VP9/MJPEG but not H.264; uniform sampling only);
      faces "largest" (the protocol) | "all"; face_detector "yunet" (default, ~10x cheaper) |
      "dlib" (HOG, DeepfakeBench's); face_landmarks "dlib5" | "yunet"; face_min_size (pixels) and
      face_min_score (YuNet's score, [0, 1]); aggregation "mean" (the protocol) | "max" |
      "topk-mean"; threshold (default: the model's); batch_size; workers (threads decoding ahead
      of the network); heatmap_size (side of the reconstruction-difference map kept per face,
      0: none); limits (`pycrl.limits.Limits`).
    An unknown or invalid option raises `pycrl.errors.OptionError` (a ValueError) naming it.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, options: ScoringOptions | None = None,
                 **overrides: Any) -> None:
        self.options = ScoringOptions.from_kwargs(options, **overrides)
        self.card = ModelCard.read(model)
        self.pipeline: Pipeline = build_pipeline(self.card, self.options)
        self.net = self.pipeline.score.net
        self.backend: str = self.net.name
        self.model_id: str = self.card.name
        self.threshold: float = self.pipeline.aggregate.threshold

    # -- network ------------------------------------------------------------

    def prepare(self, faces) -> np.ndarray:
        """Face crops as the network's input (see `pycrl.pipeline.ScoreStage.prepare`)."""
        return self.pipeline.score.prepare(faces)

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs for a prepared batch, plus ``compactness`` and ``heatmap`` where available."""
        return self.pipeline.score.infer(x)

    def score_batch(self, faces) -> np.ndarray:
        """One fake probability per face crop (see `prepare` for the accepted inputs)."""
        return self.infer(self.prepare(faces))["prob"].astype(np.float32)

    # -- media --------------------------------------------------------------

    def score_image(self, source) -> Result:
        """Score the faces of one image (path, bytes or RGB array)."""
        return self.pipeline.run(source)

    def score_video(self, source) -> Result:
        """Score one video: sampled frames, faces, aggregated score."""
        return self.pipeline.run(source)

    def score_videos(self, sources: Iterable, prefetch: int | None = None) -> Iterator[Result]:
        """Score many inputs (videos or images), yielding results in input order, with decode
        and face detection of the next inputs overlapping inference (see `Pipeline.run_many`)."""
        return self.pipeline.run_many(sources, prefetch)

    def close(self) -> None:
        self.net.close()
        close_faces = getattr(self.pipeline.faces, "close", None)  # YuNet's backend
        if close_faces is not None:
            close_faces()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Detector(model={self.model_id!r}, backend={self.backend!r}, threshold={self.threshold:.3f})"
