"""pycrl: deepfake detection with Compact Reconstruction Learning.

    import pycrl
    det = pycrl.Detector()
    print(det.score_video("clip.mp4").to_dict())

Importing pycrl stays light: the compiled extension (pycrl._C), torch and the
inference backends are imported only by the modules that need them.
"""

# First, before anything can import openvino: no telemetry from the libraries pycrl loads.
from pycrl import _privacy  # noqa: F401,I001

__version__ = "0.1.0"

__all__ = ["Detector", "Result", "FaceScore", "__version__"]


def __getattr__(name):  # lazy: `import pycrl` must not pull in OpenCV, dlib or a backend
    if name == "Detector":
        from pycrl.detector import Detector

        return Detector
    if name in ("Result", "FaceScore"):
        from pycrl import results

        return getattr(results, name)
    raise AttributeError(f"module 'pycrl' has no attribute {name!r}")
