"""Face detection (YuNet or dlib HOG) and DeepfakeBench-style alignment to 256x256 crops.

No torch here: dlib, OpenCV, numpy, and ONNX Runtime or OpenVINO (through `pycrl.runtime`) for YuNet.
"""

from .align import ARCFACE_112, align_crop, crop_template, five_points, similarity_lstsq
from .detector import Face, FaceBox, FaceDetector
from .models import LANDMARKS_ENV, LandmarkModelNotFoundError, find_landmark_model
from .yunet import YUNET_MODELS, YuNetBox, YuNetDetector

__all__ = [
    "ARCFACE_112",
    "Face",
    "FaceBox",
    "FaceDetector",
    "LANDMARKS_ENV",
    "LandmarkModelNotFoundError",
    "YUNET_MODELS",
    "YuNetBox",
    "YuNetDetector",
    "align_crop",
    "crop_template",
    "find_landmark_model",
    "five_points",
    "similarity_lstsq",
]
