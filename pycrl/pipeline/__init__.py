"""The inference path as stages with typed inputs and outputs.

    decode     source -> Frame (index, timestamp, RGB image)        MediaDecoder (PyAV / Pillow), DaliDecoder
    faces      Frame.image -> [Face] (box, landmarks, aligned crop)  YuNetFaces (default), DlibFaces
    score      crops -> Scores (probability, compactness, heatmap)   ScoreStage over a runtime Backend
    aggregate  Item + Scores -> Result (per face, frame and input)   Aggregate

`Pipeline` runs them, one input at a time or many with decode and detection in worker threads
ahead of the network; `build_pipeline` assembles the stages from a `ModelCard` and
`ScoringOptions`. Each stage is replaceable on its own: pass another decoder, face stage or
backend to `Pipeline`. `pycrl.Detector`, the CLI and the Ray actors all run this path.
"""

from pycrl.pipeline.aggregate import Aggregate, frame_scores
from pycrl.pipeline.build import build_faces, build_pipeline, choose_decoder
from pycrl.pipeline.decode import DaliDecoder, Decode, MediaDecoder
from pycrl.pipeline.faces import DlibFaces, FaceStage, YuNetFaces
from pycrl.pipeline.item import Item
from pycrl.pipeline.run import Pipeline
from pycrl.pipeline.score import Scores, ScoreStage

__all__ = [
    "Aggregate",
    "DaliDecoder",
    "Decode",
    "DlibFaces",
    "FaceStage",
    "Item",
    "MediaDecoder",
    "Pipeline",
    "ScoreStage",
    "Scores",
    "YuNetFaces",
    "build_faces",
    "build_pipeline",
    "choose_decoder",
    "frame_scores",
]
