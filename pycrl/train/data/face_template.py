"""Where the face sits in a DeepfakeBench-style aligned crop, and the 68-point index groups.

DeepfakeBench aligns every face with a 5-point similarity transform onto the ArcFace
112x112 template, rescaled to the output size and shrunk by the 1.3 crop scale (a 15 %
margin on each side). The synthetic faces are drawn in that same frame, so a detector
trained on them sees faces where real aligned crops put them, and the same positions give
a default landmark template for crops that come without landmarks.
"""

from __future__ import annotations

import numpy as np

from pycrl.faces.align import crop_template

CROP_SCALE = 1.3

# iBUG / dlib 68-point convention. "Left" means the left of the image.
JAW = slice(0, 17)
LEFT_BROW = slice(17, 22)
RIGHT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_BOTTOM = slice(31, 36)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54


def aligned_five_points(size: int = 256, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """The 5 alignment points of a ``size`` x ``size`` crop, as DeepfakeBench preprocessing places them."""
    return crop_template(size, crop_scale)


def five_points_from_68(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners of a 68-point (or 81-point dlib-style) set."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack(
        [
            lm[LEFT_EYE].mean(axis=0),
            lm[RIGHT_EYE].mean(axis=0),
            lm[NOSE_TIP],
            lm[MOUTH_LEFT],
            lm[MOUTH_RIGHT],
        ]
    )


def default_landmarks(height: int = 256, width: int | None = None) -> np.ndarray:
    """A neutral 68-point face for an aligned crop without landmarks, scaled to the crop size."""
    # The average synthetic identity is built on the aligned 5 points, so its neutral
    # landmarks are the template. Imported here to keep the dependency one-way.
    from pycrl.train.data.synthetic import mean_identity, neutral_landmarks

    width = height if width is None else width
    lm = neutral_landmarks(mean_identity()).astype(np.float64)
    return (lm * np.array([width / 256.0, height / 256.0])).astype(np.float32)
