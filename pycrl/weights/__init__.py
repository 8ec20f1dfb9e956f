"""Model folders (safetensors + JSON) and DeepfakeBench checkpoint import.

    >>> from pycrl import weights
    >>> model = weights.import_deepfakebench("ckpt_best.pth", detector="recce")
    >>> weights.save(model, "models/recce-ffpp", {"provenance": {"trained_on": "FF++ c23"}})
    >>> model = weights.load("models/recce-ffpp")

Nothing here unpickles arbitrary objects.
"""

from pycrl.checkpoint import CheckpointError, check_and_load, read_state_dict

from .deepfakebench import import_deepfakebench
from .folder import load, read_meta, save

__all__ = ["CheckpointError", "check_and_load", "read_state_dict", "import_deepfakebench",
           "load", "read_meta", "save"]
