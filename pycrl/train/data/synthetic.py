"""Deterministic procedural face-like images with 68-point landmarks.

Each identity is a set of face parameters (shape, features, colours, hair, background,
lighting, motion); each frame moves it smoothly in time (head pose, talking, smiling,
blinking). Geometry lives in a "face frame": origin at the midpoint of the eyes, x to the
image right, y down, pixels of a 256 crop, plus a depth per point so that yaw and pitch
shift the inner features over the face outline. The neutral average identity puts its eyes,
nose tip and mouth corners on the DeepfakeBench 5-point alignment template, so frames look
like aligned 256x256 face crops. Nothing here is a real person; this is data for tests,
demos and pipeline checks, never for accuracy claims.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from pycrl.train.data.drawing import (
    ellipse_points,
    fill,
    paint,
    poly_mask,
    smooth_closed,
    stroke,
)
from pycrl.train.data.face_template import aligned_five_points
from pycrl.train.data.seeding import rng_for

SIZE = 256

SKIN_LIGHT = np.array([236.0, 204.0, 180.0])
SKIN_DARK = np.array([92.0, 58.0, 40.0])
HAIR_COLOURS = [(25, 20, 18), (70, 45, 30), (120, 80, 45), (200, 165, 100), (150, 60, 30), (160, 160, 160)]
IRIS_COLOURS = [(60, 40, 25), (95, 65, 35), (60, 100, 140), (70, 110, 70), (110, 110, 120)]


@dataclass(frozen=True)
class FaceIdentity:
    """Everything that stays fixed for one synthetic person (pixels of a 256 crop)."""

    centre: tuple[float, float]  # eye-line midpoint in the crop
    face_w: float  # half-width of the face at the temples
    jaw_top: float  # where the jaw line starts, below the eye line
    chin: float  # eye line to chin
    forehead: float  # jaw start to top of the skull
    jaw_power: float  # superellipse exponent: 2 round, 3 square
    eye_dx: float
    eye_w: float
    eye_h: float
    iris_r: float
    brow_gap: float
    brow_thick: float
    brow_arch: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_upper: float
    lip_lower: float
    skin: tuple[float, float, float] = (200.0, 160.0, 130.0)
    lips: tuple[float, float, float] = (170.0, 90.0, 90.0)
    iris: tuple[float, float, float] = (70.0, 50.0, 30.0)
    hair: tuple[float, float, float] = (40.0, 30.0, 25.0)
    clothes: tuple[float, float, float] = (60.0, 80.0, 120.0)
    bg_a: tuple[float, float, float] = (180.0, 180.0, 175.0)
    bg_b: tuple[float, float, float] = (120.0, 125.0, 130.0)
    hair_style: int = 1  # 0 none, 1 short, 2 long
    hair_volume: float = 8.0
    hairline: float = 30.0  # brows to hairline
    light_angle: float = 0.0
    light_strength: float = 0.0
    noise_sigma: float = 0.0
    motion: tuple[float, ...] = field(default=(0.0,) * 16)  # amplitudes, frequencies, phases
    texture_seed: int = 0


@dataclass(frozen=True)
class FramePose:
    """Per-frame head pose and expression."""

    yaw: float = 0.0  # radians
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    mouth_open: float = 0.0  # pixels
    smile: float = 0.0  # mouth-corner lift, pixels
    eye_open: float = 1.0  # 1 open, ~0 blink
    brow_raise: float = 0.0  # pixels


NEUTRAL = FramePose()


def mean_identity() -> FaceIdentity:
    """The average face: its neutral eyes, nose tip and mouth corners sit on the alignment template."""
    p = aligned_five_points(SIZE)
    centre = (p[0] + p[1]) / 2.0
    return FaceIdentity(
        centre=(float(centre[0]), float(centre[1])),
        face_w=72.0,
        jaw_top=4.0,
        chin=112.0,
        forehead=86.0,
        jaw_power=2.4,
        eye_dx=float(p[1, 0] - p[0, 0]) / 2.0,
        eye_w=13.0,
        eye_h=5.0,
        iris_r=5.5,
        brow_gap=14.0,
        brow_thick=4.0,
        brow_arch=3.5,
        nose_len=float(p[2, 1] - centre[1]),
        nose_w=14.0,
        mouth_y=float((p[3, 1] + p[4, 1]) / 2.0 - centre[1]),
        mouth_w=float(p[4, 0] - p[3, 0]) / 2.0,
        lip_upper=5.0,
        lip_lower=6.0,
    )


def _colour(rng: np.random.Generator, base, spread: float) -> tuple[float, float, float]:
    c = np.clip(np.asarray(base, dtype=np.float64) + rng.normal(0.0, spread, 3), 0, 255)
    return float(c[0]), float(c[1]), float(c[2])


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    """A random identity around the average face (stays roughly aligned, like real crops)."""
    m = mean_identity()
    u = rng.uniform
    tone = u(0.0, 1.0)
    skin = np.clip(SKIN_LIGHT * (1 - tone) + SKIN_DARK * tone + rng.normal(0, 6, 3), 0, 255)
    lips = skin * 0.7 + np.array([175.0, 70.0, 80.0]) * 0.3
    hair = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]
    motion = np.concatenate(
        [
            [u(0.03, 0.3), u(0.01, 0.08), u(1.0, 6.0), u(0.5, 4.0), u(0.0, 9.0), u(-1.0, 3.0)],  # amplitudes
            [u(0.05, 0.25), u(0.04, 0.2), u(0.03, 0.15), u(0.3, 0.9), float(rng.integers(18, 60))],  # freq/period
            rng.uniform(0.0, 2 * np.pi, 5),  # phases
        ]
    )
    return replace(
        m,
        centre=(m.centre[0] + u(-3, 3), m.centre[1] + u(-3, 3)),
        face_w=u(64, 80),
        jaw_top=u(0, 8),
        chin=u(100, 120),
        forehead=u(80, 92),
        jaw_power=u(2.0, 3.0),
        eye_dx=m.eye_dx * u(0.92, 1.08),
        eye_w=u(11, 15),
        eye_h=u(4.0, 6.2),
        iris_r=u(4.5, 6.0),
        brow_gap=u(11, 17),
        brow_thick=u(2.5, 5.5),
        brow_arch=u(1.5, 6.0),
        nose_len=m.nose_len * u(0.9, 1.1),
        nose_w=u(10, 17),
        mouth_y=m.mouth_y * u(0.94, 1.07),
        mouth_w=m.mouth_w * u(0.85, 1.15),
        lip_upper=u(3, 7),
        lip_lower=u(4, 9),
        skin=(float(skin[0]), float(skin[1]), float(skin[2])),
        lips=(float(lips[0]), float(lips[1]), float(lips[2])),
        iris=_colour(rng, IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))], 8),
        hair=_colour(rng, hair, 10),
        clothes=_colour(rng, rng.uniform(30, 220, 3), 0),
        bg_a=_colour(rng, rng.uniform(40, 230, 3), 0),
        bg_b=_colour(rng, rng.uniform(40, 230, 3), 0),
        hair_style=int(rng.choice([0, 1, 1, 2, 2])),
        hair_volume=u(4, 16),
        hairline=u(22, 40),
        light_angle=u(0, 2 * np.pi),
        light_strength=u(0.05, 0.3),
        noise_sigma=u(1.0, 3.5),
        motion=tuple(float(v) for v in motion),
        texture_seed=int(rng.integers(2**31)),
    )


def pose_at(identity: FaceIdentity, t: float) -> FramePose:
    """Smooth head motion and expression at frame ``t`` (a function of time only)."""
    a_yaw, a_pitch, a_roll_deg, a_shift, a_talk, smile_base = identity.motion[0:6]
    f_yaw, f_roll, f_slow, f_talk, blink_period = identity.motion[6:11]
    ph = identity.motion[11:16]
    blinking = ((t + ph[4] * blink_period / (2 * np.pi)) % blink_period) < 1.5
    return FramePose(
        yaw=a_yaw * math.sin(f_yaw * t + ph[0]),
        pitch=a_pitch * math.sin(f_slow * t + ph[1]),
        roll=math.radians(a_roll_deg) * math.sin(f_roll * t + ph[2]),
        scale=1.0 + 0.03 * math.sin(f_slow * 0.7 * t + ph[3]),
        shift=(a_shift * math.sin(f_slow * t + ph[2]), 0.6 * a_shift * math.cos(f_slow * 1.3 * t + ph[1])),
        mouth_open=a_talk * max(0.0, math.sin(f_talk * t + ph[3])),
        smile=smile_base + 1.5 * math.sin(f_slow * 0.5 * t + ph[0]),
        eye_open=0.12 if blinking else 1.0,
        brow_raise=2.0 * math.sin(f_slow * 0.8 * t + ph[4]),
    )


# ---------------------------------------------------------------- geometry (face frame)


def _landmarks_face_frame(f: FaceIdentity, p: FramePose) -> tuple[np.ndarray, np.ndarray]:
    """68 points (iBUG order) and their depths, before pose."""
    theta = np.linspace(0.0, np.pi, 17)
    jaw = _jaw_curve(f, theta)
    brow_u = np.linspace(0.0, 1.0, 5)
    brow_x = -f.eye_dx - 1.2 * f.eye_w + brow_u * 2.1 * f.eye_w
    brow_y = -f.brow_gap - p.brow_raise - f.brow_arch * np.sin(np.pi * (0.2 + 0.7 * brow_u))
    left_brow = np.stack([brow_x, brow_y], 1)
    right_brow = left_brow[::-1] * np.array([-1.0, 1.0])
    bridge = np.stack([np.zeros(4), np.linspace(-0.25 * f.brow_gap, f.nose_len, 4)], 1)
    nw = f.nose_w
    nose_bottom = np.stack([np.array([-nw, -nw / 2, 0, nw / 2, nw]),
                            f.nose_len + np.array([1.0, 4.0, 5.5, 4.0, 1.0])], 1)
    h = f.eye_h * p.eye_open
    ex, ew = f.eye_dx, f.eye_w
    eye_l = np.array([[-ew, 1.0], [-ew / 3, -h], [ew / 3, -h], [ew, 0.0], [ew / 3, 0.8 * h], [-ew / 3, 0.8 * h]])
    left_eye = eye_l + np.array([-ex, 0.0])
    # right eye: mirror, then reorder so 42 is the inner corner and 45 the outer one
    right_eye = (eye_l * np.array([-1.0, 1.0]))[[3, 2, 1, 0, 5, 4]] + np.array([ex, 0.0])
    mw, ul, ll, op, sm = f.mouth_w, f.lip_upper, f.lip_lower, p.mouth_open, p.smile
    outer = np.array([
        [-mw, -sm], [-0.6 * mw, -0.8 * ul], [-0.25 * mw, -ul], [0.0, -0.75 * ul], [0.25 * mw, -ul],
        [0.6 * mw, -0.8 * ul], [mw, -sm], [0.6 * mw, 0.9 * ll + op], [0.25 * mw, ll + op],
        [0.0, 1.05 * ll + op], [-0.25 * mw, ll + op], [-0.6 * mw, 0.9 * ll + op],
    ])
    inner = np.array([
        [-0.85 * mw, -0.8 * sm], [-0.35 * mw, -0.15 * ul], [0.0, -0.1 * ul], [0.35 * mw, -0.15 * ul],
        [0.85 * mw, -0.8 * sm], [0.35 * mw, 0.9 * op], [0.0, op], [-0.35 * mw, 0.9 * op],
    ])
    mouth = np.concatenate([outer, inner]) + np.array([0.0, f.mouth_y])
    pts = np.concatenate([jaw, left_brow, right_brow, bridge, nose_bottom, left_eye, right_eye, mouth])
    depth = np.concatenate([
        np.zeros(17), np.full(10, 14.0), np.linspace(12.0, 35.0, 4), np.array([18.0, 24, 26, 24, 18]),
        np.full(12, 10.0), np.full(20, 16.0),
    ])
    return pts, depth


def _jaw_curve(f: FaceIdentity, theta: np.ndarray) -> np.ndarray:
    """Jaw from the left temple (theta=0) round the chin to the right one (theta=pi)."""
    c, s = np.cos(theta), np.sin(theta)
    e = 2.0 / f.jaw_power
    x = -f.face_w * np.sign(c) * np.abs(c) ** e
    y = f.jaw_top + (f.chin - f.jaw_top) * np.abs(s) ** e
    return np.stack([x, y], 1)


def _skull_curve(f: FaceIdentity, theta: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """Top of the head from the right temple (theta=0) to the left one (theta=pi)."""
    x = (f.face_w + grow) * np.cos(theta)
    y = f.jaw_top - (f.forehead + grow) * np.sin(theta) ** 0.8
    return np.stack([x, y], 1)


def _project(pts: np.ndarray, depth: np.ndarray | float, f: FaceIdentity, p: FramePose) -> np.ndarray:
    """Face frame -> crop pixels: yaw/pitch move points by their depth, then a similarity."""
    x = pts[:, 0] * math.cos(p.yaw) + depth * math.sin(p.yaw)
    y = pts[:, 1] + depth * math.sin(p.pitch)
    c, s = math.cos(p.roll) * p.scale, math.sin(p.roll) * p.scale
    return np.stack([c * x - s * y + f.centre[0] + p.shift[0], s * x + c * y + f.centre[1] + p.shift[1]], 1)


def landmarks(identity: FaceIdentity, pose: FramePose = NEUTRAL) -> np.ndarray:
    """The 68 landmarks of ``identity`` in ``pose``, crop pixels, float32 (68, 2)."""
    pts, depth = _landmarks_face_frame(identity, pose)
    return _project(pts, depth, identity, pose).astype(np.float32)


def neutral_landmarks(identity: FaceIdentity) -> np.ndarray:
    return landmarks(identity, NEUTRAL)


# ---------------------------------------------------------------- rendering


@lru_cache(maxsize=64)
def _background(identity: FaceIdentity) -> np.ndarray:
    """Smooth two-colour texture plus fine grain, fixed per identity."""
    rng = rng_for(identity.texture_seed, "background")
    g = int(rng.integers(3, 9))
    blobs = cv2.resize(rng.random((g, g)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    blobs = np.clip(blobs, 0.0, 1.0)[..., None]
    grain = cv2.GaussianBlur(rng.normal(0.0, 8.0, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.2)[..., None]
    bg = np.asarray(identity.bg_a, np.float32) * blobs + np.asarray(identity.bg_b, np.float32) * (1 - blobs)
    out = bg + grain
    out.setflags(write=False)
    return out


def _light(identity: FaceIdentity) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    d = ((xx - SIZE / 2) * math.cos(identity.light_angle) + (yy - SIZE / 2) * math.sin(identity.light_angle)) / SIZE
    return (1.0 + 2.0 * identity.light_strength * d)[..., None]


def render(identity: FaceIdentity, pose: FramePose, noise_rng: np.random.Generator | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one frame: RGB uint8 (256, 256, 3) and its 68 landmarks float32 (68, 2)."""
    f, p = identity, pose
    pts, depth = _landmarks_face_frame(f, p)
    lm = _project(pts, depth, f, p)

    def proj(a, d=0.0):
        return _project(np.asarray(a, np.float64), d, f, p)

    skin = np.asarray(f.skin, np.float32)
    img = _background(f).copy()
    bottom = SIZE + 40.0 - f.centre[1]
    # clothes, neck, back hair and ears sit behind the face
    fill(img, proj([[-2.2 * f.face_w, bottom], [-1.4 * f.face_w, f.chin + 25], [1.4 * f.face_w, f.chin + 25],
                    [2.2 * f.face_w, bottom]]), f.clothes)
    fill(img, proj([[-0.5 * f.face_w, 0.6 * f.chin], [0.5 * f.face_w, 0.6 * f.chin],
                    [0.55 * f.face_w, f.chin + 30], [-0.55 * f.face_w, f.chin + 30]]), skin * 0.8)
    theta = np.linspace(0.0, np.pi, 33)
    if f.hair_style == 2:
        back = np.concatenate([[[f.face_w + f.hair_volume, 0.85 * f.chin]], _skull_curve(f, theta, f.hair_volume),
                               [[-f.face_w - f.hair_volume, 0.85 * f.chin]]])
        fill(img, proj(back, -20.0), np.asarray(f.hair, np.float32) * 0.85)
    for side in (-1.0, 1.0):
        fill(img, proj(ellipse_points((side * (f.face_w - 1), f.jaw_top + 14), (7.0, 15.0)), -20.0), skin * 0.88)

    outline = np.concatenate([_jaw_curve(f, np.linspace(0.0, np.pi, 49)), _skull_curve(f, theta)[1:-1]])
    face = poly_mask((SIZE, SIZE), proj(outline))
    # rounded look: darken towards the silhouette
    dist = cv2.distanceTransform((face > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    shade = (0.8 + 0.2 * np.clip(dist / 20.0, 0.0, 1.0))[..., None]
    paint(img, face, 0.0, 1.0)
    img += face[..., None] * skin * shade
    for side in (-1.0, 1.0):  # cheeks
        cheek = ellipse_points((side * (f.eye_dx + 4), f.nose_len + 6), (13.0, 9.0))
        fill(img, proj(cheek, 8.0), np.asarray(f.lips, np.float32), 0.12)

    if f.hair_style:
        cap_top = _skull_curve(f, theta, f.hair_volume)
        line = np.stack([f.face_w * 1.02 * np.cos(theta[::-1]),
                         -f.brow_gap + 6 - (f.hairline - 6) * np.sin(theta[::-1]) ** 0.6], 1)
        cap = np.concatenate([cap_top, line])
        cap_mask = fill(img, proj(cap, -2.0), f.hair)
        strands = np.zeros((SIZE, SIZE, 3), np.float32)
        for k in range(-3, 4):  # a few darker strands for texture, kept inside the hair
            strand = np.stack([np.linspace(0.12 * k * f.face_w, 0.25 * k * f.face_w, 6),
                               np.linspace(-f.brow_gap - f.hairline, f.jaw_top - f.forehead, 6)], 1)
            stroke(strands, proj(strand), (1.0, 1.0, 1.0), 1.5)
        paint(img, strands[..., 0] * cap_mask, np.asarray(f.hair, np.float32) * 0.7, 0.6)

    brow_colour = np.asarray(f.hair, np.float32) * 0.8
    stroke(img, lm[17:22], brow_colour, f.brow_thick * p.scale)
    stroke(img, lm[22:27], brow_colour, f.brow_thick * p.scale)

    gaze = np.array([3.0 * math.sin(p.yaw), 0.0])
    for eye in (lm[36:42], lm[42:48]):
        curve = smooth_closed(eye)
        white = fill(img, curve, (238.0, 236.0, 230.0))
        if p.eye_open > 0.5:
            centre = eye.mean(0) + gaze
            iris = poly_mask((SIZE, SIZE), ellipse_points(centre, (f.iris_r * p.scale,) * 2)) * white
            paint(img, iris, f.iris)
            pupil = poly_mask((SIZE, SIZE), ellipse_points(centre, (0.45 * f.iris_r * p.scale,) * 2)) * white
            paint(img, pupil, (15.0, 12.0, 12.0))
            paint(img, poly_mask((SIZE, SIZE), ellipse_points(centre + [-1.5, -1.5], (1.2, 1.2))) * white,
                  (250.0, 250.0, 250.0))
        stroke(img, eye[[0, 1, 2, 3]], (40.0, 30.0, 30.0), 1.6)

    nose_dark = skin * 0.6
    stroke(img, lm[31:36], nose_dark, 1.2, 0.7)
    stroke(img, lm[27:31] + np.array([-3.0 * math.cos(f.light_angle), 0.0]), skin * 0.8, 2.0, 0.35)
    for k in (32, 34):
        fill(img, ellipse_points(lm[k] + [0.0, -1.0], (2.6 * p.scale, 1.5 * p.scale)), nose_dark * 0.6, 0.8)

    lips = fill(img, smooth_closed(lm[48:60], 4), f.lips)
    if p.mouth_open > 0.8:
        inner = fill(img, smooth_closed(lm[60:68], 4), (70.0, 25.0, 30.0))
        if p.mouth_open > 3.0:
            top = lm[61:64].mean(0)
            teeth = ellipse_points(top + [0.0, 1.5], (0.55 * f.mouth_w, 2.2))
            paint(img, poly_mask((SIZE, SIZE), teeth) * inner * lips.clip(0, 1), (235.0, 230.0, 215.0))
    else:
        stroke(img, lm[[48, 60, 61, 62, 63, 64, 54]], np.asarray(f.lips, np.float32) * 0.6, 1.4)

    img *= _light(f)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    if noise_rng is not None and f.noise_sigma > 0:
        img += noise_rng.normal(0.0, f.noise_sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), lm.astype(np.float32)


class SyntheticFaces:
    """Identities and frames keyed by (seed, identity, frame): same keys, same bytes."""

    def __init__(self, seed: int = 0, noise: bool = True):
        self.seed = int(seed)
        self.noise = noise
        self._identities: dict[int, FaceIdentity] = {}

    def identity(self, index: int) -> FaceIdentity:
        if index not in self._identities:
            self._identities[index] = sample_identity(rng_for(self.seed, "identity", index))
        return self._identities[index]

    def pose(self, index: int, frame: int) -> FramePose:
        return pose_at(self.identity(index), float(frame))

    def frame(self, index: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (256, 256, 3) and landmarks float32 (68, 2) of one identity at one frame."""
        noise = rng_for(self.seed, "noise", index, frame) if self.noise else None
        return render(self.identity(index), self.pose(index, frame), noise)
