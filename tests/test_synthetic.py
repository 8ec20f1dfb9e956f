"""Synthetic faces, landmarks, hull masks, self-blending and the synthetic face swap."""

import cv2
import numpy as np
import pytest

from pycrl.train.data.blending import MaskConfig, face_hull, face_scale, forehead_points, hull_mask, random_blend_mask
from pycrl.train.data.face_swap import similarity_transform, swap_face
from pycrl.train.data.face_template import aligned_five_points, default_landmarks, five_points_from_68
from pycrl.train.data.seeding import rng_for
from pycrl.train.data.self_blend import SelfBlendConfig, self_blend
from pycrl.train.data.synthetic import SyntheticFaces, landmarks, mean_identity


@pytest.fixture(scope="module")
def face():
    return SyntheticFaces(seed=11).frame(2, 5)


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, lm_a = SyntheticFaces(seed=3).frame(1, 4)
    b, lm_b = SyntheticFaces(seed=3).frame(1, 4)
    assert a.dtype == np.uint8 and a.shape == (256, 256, 3)
    assert a.tobytes() == b.tobytes() and lm_a.tobytes() == lm_b.tobytes()
    c, _ = SyntheticFaces(seed=4).frame(1, 4)
    assert np.abs(a.astype(int) - c).mean() > 5
    # order of generation does not matter: frames are keyed, not drawn from a shared stream
    g = SyntheticFaces(seed=3)
    g.frame(0, 0), g.frame(5, 9)
    assert g.frame(1, 4)[0].tobytes() == a.tobytes()


def test_identities_differ_and_frames_move():
    g = SyntheticFaces(seed=0)
    a0, lm0 = g.frame(0, 0)
    a1, lm1 = g.frame(0, 12)
    b0, _ = g.frame(1, 0)
    assert np.abs(a0.astype(int) - b0).mean() > 10  # another person
    assert 0.1 < np.abs(lm0 - lm1).max() < 30  # same person, moved a little


def test_landmarks_are_a_plausible_68_point_face(face):
    img, lm = face
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert (lm > 0).all() and (lm < 256).all()
    brows, eyes, nose, mouth, chin = lm[17:27, 1].mean(), lm[36:48, 1].mean(), lm[30, 1], lm[48:68, 1].mean(), lm[8, 1]
    assert brows < eyes < nose < mouth < chin
    assert lm[36:42, 0].mean() < lm[27:31, 0].mean() < lm[42:48, 0].mean()  # left eye, nose, right eye
    assert lm[0, 0] < lm[8, 0] < lm[16, 0]  # jaw runs left to right through the chin
    # skin under the nose tip differs from the background corner
    assert np.abs(img[int(lm[29, 1]), int(lm[29, 0])].astype(int) - img[3, 3]).sum() > 0


def test_neutral_average_face_sits_on_the_alignment_template():
    five = five_points_from_68(landmarks(mean_identity()))
    np.testing.assert_allclose(five, aligned_five_points(256), atol=1.5)
    small = default_landmarks(128, 100)
    np.testing.assert_allclose(small, landmarks(mean_identity()) * [100 / 256, 128 / 256], rtol=1e-5)


def test_hull_mask_covers_the_face_and_forehead(face):
    _, lm = face
    ext = hull_mask((256, 256), lm, "extended")
    plain = hull_mask((256, 256), lm, "face")
    inner = hull_mask((256, 256), lm, "inner")
    assert inner.sum() < plain.sum() < ext.sum()
    grown = cv2.dilate(plain, np.ones((3, 3), np.uint8))  # hull vertices are rounded to pixels
    for x, y in np.rint(lm).astype(int):
        assert grown[y, x] == 1
    top = forehead_points(lm)
    assert top[8, 1] < lm[17:27, 1].min() - 20  # forehead reaches well above the brows
    assert ext[int(top[8, 1]) + 2, int(top[8, 0])] == 1
    # an 81-point set uses its own forehead points
    lm81 = np.concatenate([lm, top[2:15] - [0.0, 10.0]])
    assert face_hull(lm81)[:, 1].min() == pytest.approx(top[2:15, 1].min() - 10.0)
    with pytest.raises(ValueError):
        face_hull(lm[:30])


def test_random_blend_mask_is_soft_and_near_the_hull(face):
    _, lm = face
    cfg = MaskConfig(blend_ratios=(1.0,))
    for k in range(6):
        m = random_blend_mask((256, 256), lm, rng_for(0, "m", k), cfg)
        assert m.dtype == np.float32 and m.min() == 0.0 and m.max() == pytest.approx(1.0)
        assert ((m > 0) & (m < 1)).sum() > 200  # a soft edge, not a hard cut
        assert m[_beyond_reach(lm, cfg)].max() == 0.0
        yy, xx = np.nonzero(m)
        centre = np.average(np.stack([xx, yy], 1), axis=0, weights=m[yy, xx])
        assert np.linalg.norm(centre - lm[:68].mean(0)) < 30  # centred on the face


def _beyond_reach(lm, cfg=MaskConfig()):
    """Pixels no blend mask may touch: farther from the extended hull than warp + growth + blur tail."""
    outside = 1 - hull_mask((256, 256), lm, "extended").astype(np.uint8)
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    reach = (cfg.deform + cfg.grow[1] + 4 * cfg.blur[1]) * face_scale(lm) + 2
    return dist > reach


def test_self_blend_changes_pixels_only_inside_the_mask(face):
    img, lm = face
    for k in range(4):
        fake, mask = self_blend(img, lm, rng_for(5, k))
        assert fake.shape == img.shape and fake.dtype == np.uint8
        changed = np.any(fake != img, axis=2)
        assert changed.sum() > 500  # it did blend something
        assert not (changed & (mask <= 0)).any()
        assert not (changed & _beyond_reach(lm)).any()


def test_self_blend_is_seeded(face):
    img, lm = face
    a, ma = self_blend(img, lm, rng_for(1, "x"))
    b, mb = self_blend(img, lm, rng_for(1, "x"))
    c, _ = self_blend(img, lm, rng_for(2, "x"))
    assert a.tobytes() == b.tobytes() and ma.tobytes() == mb.tobytes()
    assert a.tobytes() != c.tobytes()


def test_self_blend_on_other_crops_and_without_landmarks(face):
    img, lm = face
    small = cv2.resize(img, (200, 180), interpolation=cv2.INTER_AREA)
    lm_small = lm * np.array([200 / 256, 180 / 256], np.float32)
    fake, mask = self_blend(small, lm_small, rng_for(0, "s"))
    assert fake.shape == small.shape and mask.shape == (180, 200)
    fake2, mask2 = self_blend(small, None, rng_for(0, "s"))  # default template for aligned crops
    assert mask2.max() > 0 and not (np.any(fake2 != small, axis=2) & (mask2 <= 0)).any()
    with pytest.raises(ValueError, match="RGB uint8"):
        self_blend(small.astype(np.float32), lm_small)
    # a config without jitter and a full blend ratio still only moves the masked pixels
    calm = SelfBlendConfig(colour_prob=0.0, sharpen_prob=0.0, blur_prob=0.0, downscale_prob=0.0,
                           scale=(1.0, 1.0), shift=0.0)
    same, _ = self_blend(img, lm, rng_for(0, "c"), calm)
    np.testing.assert_array_equal(same, img)  # pasting an unchanged copy changes nothing


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (20, 2))
    a, s, t = 0.3, 1.2, np.array([5.0, -7.0])
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = s * src @ r.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_swap_face_pastes_another_identity_inside_its_mask():
    g = SyntheticFaces(seed=2)
    tgt, tl = g.frame(0, 3)
    src, sl = g.frame(1, 3)
    fake, mask = swap_face(tgt, tl, src, sl, rng_for(0, "swap"))
    changed = np.any(fake != tgt, axis=2)
    assert changed.sum() > 1000 and not (changed & (mask <= 0)).any()
