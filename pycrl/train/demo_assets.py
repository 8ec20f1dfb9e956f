"""The bundled sample clips: a public-domain face photo (scikit-image's
``astronaut``, NASA) as a short clip, once untouched and once with its face
self-blended (a colour- and geometry-jittered copy of the face pasted back
inside a soft face mask, the kind of boundary a face swap leaves).

    pycrl train demo-clips --out pycrl/assets/samples
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

SIZE = 384  # frame side: small files, a face large enough for the HOG detector
FRAMES = 50  # 2 s at 25 fps


def _frames(base: np.ndarray):
    """A slow push-in with a little sideways drift, so the clip is not one still frame."""
    h, w = base.shape[:2]
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        zoom = 1.0 + 0.08 * t
        m = cv2.getRotationMatrix2D((w / 2 + 6 * np.sin(2 * np.pi * t), h / 2), 0.0, zoom)
        yield cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _write(path: Path, frames) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20"} if stream.codec_context.name == "libx264" else {}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def blended_photo(photo: np.ndarray, seed: int = 7) -> np.ndarray:
    """The photo with its face self-blended, pasted back through the alignment."""
    from pycrl.faces import FaceDetector
    from pycrl.train.data.self_blend import self_blend

    face = FaceDetector(mode="largest")(photo)[0]
    fake, mask = self_blend(face.crop, None, np.random.default_rng(seed))
    inv = face.inverse
    size = photo.shape[1], photo.shape[0]
    fake_full = cv2.warpAffine(fake, inv, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask.astype(np.float32), inv, size, flags=cv2.INTER_LINEAR)[..., None]
    return (photo * (1 - alpha) + fake_full * alpha).round().clip(0, 255).astype(np.uint8)


def make_clips(out: Path) -> list[Path]:
    from skimage import data

    photo = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    out.mkdir(parents=True, exist_ok=True)
    real, fake = out / "astronaut_real.mp4", out / "astronaut_selfblend.mp4"
    _write(real, _frames(photo))
    _write(fake, _frames(blended_photo(photo)))
    return [real, fake]


def register(subparsers) -> None:
    p = subparsers.add_parser("demo-clips", help="write the bundled sample clips (real + self-blended)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("pycrl/assets/samples"))
    p.set_defaults(func=lambda args: print("\n".join(str(p) for p in make_clips(args.out))) or 0)
