"""Images without a face, shared by the face stages' tests (each stage must return [] for them)."""

import numpy as np

NO_FACE_IMAGES = {
    "blank": np.zeros((480, 640, 3), np.uint8),
    "noise": np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    "2x2": np.zeros((2, 2, 3), np.uint8),
    "grey": np.full((64, 32), 128, np.uint8),  # grey is accepted
}
