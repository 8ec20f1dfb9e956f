"""DeepfakeBench's training augmentation, built on albumentations (imported only when used).

The list and its defaults follow DeepfakeBench's ``data_aug`` config: horizontal flip,
rotation, Gaussian blur, an isotropic resize with a random interpolation, one of
brightness/contrast, FancyPCA or hue/saturation, and JPEG compression. The config keys are
DeepfakeBench's, so its YAML ``data_aug`` blocks work as they are.

Beyond DeepfakeBench, the degradations real uploads go through (all off by default, so
DeepfakeBench recipes are unchanged): a small affine jitter, downscale-and-restore (a
resized upload), Gaussian noise, and an H.264 round trip through libx264 (PyAV) at a
random CRF, applied last as a platform's re-encoder would.

Use the MIT-licensed ``albumentations`` (<= 2.0.8); its successor AlbumentationsX is AGPL.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

INSTALL_HINT = ("the training augmentation needs albumentations: pip install 'albumentations==2.0.8' "
                "(the MIT-licensed line; AlbumentationsX is AGPL). Or turn augmentation off "
                "(use_data_augmentation: false).")


@dataclass(frozen=True)
class AugmentConfig:
    """DeepfakeBench ``data_aug`` fields and defaults; ``enabled`` is ``use_data_augmentation``."""

    enabled: bool = True
    flip_prob: float = 0.5
    rotate_prob: float = 0.5
    rotate_limit: tuple[float, float] = (-10.0, 10.0)
    blur_prob: float = 0.5
    blur_limit: tuple[int, int] = (3, 7)
    brightness_prob: float = 0.5  # of the one-of colour group
    brightness_limit: tuple[float, float] = (-0.1, 0.1)
    contrast_limit: tuple[float, float] = (-0.1, 0.1)
    quality_lower: int = 40
    quality_upper: int = 100
    compression_prob: float = 0.5
    # upload degradations (not in DeepfakeBench; 0 = off)
    affine_prob: float = 0.0
    affine_shift: float = 0.03  # fraction of the side
    affine_scale: tuple[float, float] = (0.95, 1.05)
    downscale_prob: float = 0.0
    downscale_range: tuple[float, float] = (0.35, 0.9)
    noise_prob: float = 0.0
    noise_std: tuple[float, float] = (0.01, 0.04)  # fraction of the full range
    h264_prob: float = 0.0
    h264_crf: tuple[int, int] = (18, 38)

    @classmethod
    def from_dict(cls, d: Mapping | None, enabled: bool = True) -> AugmentConfig:
        """From a DeepfakeBench ``data_aug`` mapping; unknown keys raise, naming them."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown augmentation key(s) {unknown}; known: {sorted(known)}")
        for key in ("rotate_limit", "blur_limit", "brightness_limit", "contrast_limit", "affine_scale",
                    "downscale_range", "noise_std", "h264_crf"):
            if key in d:
                d[key] = tuple(d[key])
        d.setdefault("enabled", enabled)
        return cls(**d)


def _albumentations():
    # albumentations 2.0.x asks PyPI for a newer version at import; nothing may download here.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        import albumentations
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return albumentations


class Augmentation:
    """Callable ``(image=, mask=None, keypoints=None, rng=None) -> {"image", "mask", "keypoints"}``.

    ``rng`` (numpy Generator) reseeds the pipeline per call: albumentations keeps its own
    random state, which forked DataLoader workers would otherwise share and repeat.
    """

    def __init__(self, config: AugmentConfig, resolution: int):
        A = _albumentations()
        import cv2

        c = config
        # Frames arrive at `resolution`; the resize only matters for other sizes, and its random
        # interpolation is part of DeepfakeBench's recipe.
        resize = A.OneOf([A.LongestMaxSize(max_size=resolution, interpolation=i)
                          for i in (cv2.INTER_CUBIC, cv2.INTER_LINEAR, cv2.INTER_AREA)], p=1.0)
        upload = []
        if c.affine_prob > 0:
            upload.append(A.Affine(translate_percent=(-c.affine_shift, c.affine_shift), scale=c.affine_scale,
                                   border_mode=cv2.BORDER_REFLECT_101, p=c.affine_prob))
        if c.downscale_prob > 0:
            upload.append(A.Downscale(scale_range=c.downscale_range, p=c.downscale_prob))
        if c.noise_prob > 0:
            upload.append(A.GaussNoise(std_range=c.noise_std, p=c.noise_prob))
        self.pipeline = A.Compose(
            [
                A.HorizontalFlip(p=c.flip_prob),
                A.Rotate(limit=c.rotate_limit, border_mode=cv2.BORDER_REFLECT_101, p=c.rotate_prob),
                A.GaussianBlur(blur_limit=c.blur_limit, p=c.blur_prob),
                resize,
                *upload,
                A.OneOf([A.RandomBrightnessContrast(brightness_limit=c.brightness_limit,
                                                    contrast_limit=c.contrast_limit),
                         A.FancyPCA(), A.HueSaturationValue()], p=c.brightness_prob),
                A.ImageCompression(quality_range=(c.quality_lower, c.quality_upper), p=c.compression_prob),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        )
        self.h264_prob, self.h264_crf = c.h264_prob, c.h264_crf

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None, keypoints: np.ndarray | None = None,
                 rng: np.random.Generator | None = None) -> dict:
        if rng is not None:
            # one shared state for all transforms: set_random_seed would give each transform the
            # same seed, and identical first draws make them all fire, or all skip, together
            seed = int(rng.integers(2**63))
            self.pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
        kp = np.zeros((0, 2), np.float32) if keypoints is None else np.asarray(keypoints, np.float32)
        args = {"image": image, "keypoints": kp}
        if mask is not None:
            args["mask"] = mask
        out = self.pipeline(**args)
        if self.h264_prob > 0:
            draw = rng if rng is not None else np.random.default_rng()
            if draw.random() < self.h264_prob:
                out["image"] = h264_round_trip(out["image"], int(draw.integers(self.h264_crf[0], self.h264_crf[1] + 1)))
        return {"image": out["image"], "mask": out.get("mask") if mask is not None else None,
                "keypoints": np.asarray(out["keypoints"], np.float32).reshape(-1, 2) if keypoints is not None
                else None}


def h264_round_trip(image: np.ndarray, crf: int) -> np.ndarray:
    """``image`` (RGB uint8, even sides) encoded as one H.264 intra frame by libx264 at ``crf``
    and decoded again: the blocking, ringing and chroma subsampling of a re-encoded upload."""
    import av

    h, w = image.shape[:2]
    if h % 2 or w % 2:
        return image  # yuv420p needs even sides; training crops always have them
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.options = {"crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    return frames[0].to_ndarray(format="rgb24") if frames else image


def build_augmentation(config: AugmentConfig | Mapping | bool | None = True, resolution: int = 256
                       ) -> Augmentation | None:
    """The training augmentation, or None when switched off.

    ``config``: an :class:`AugmentConfig`, a DeepfakeBench ``data_aug`` mapping, True for the
    defaults, or False/None for no augmentation.
    """
    if config is None or config is False:
        return None
    if config is True:
        config = AugmentConfig()
    elif not isinstance(config, AugmentConfig):
        config = AugmentConfig.from_dict(config)
    return Augmentation(config, resolution) if config.enabled else None
