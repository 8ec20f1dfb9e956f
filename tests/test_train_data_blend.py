"""On-the-fly self-blended fakes over real faces, and the DeepfakeBench augmentation."""

import sys

import cv2
import numpy as np
import pytest
import torch

from pycrl.train.data import (AugmentConfig, EmptySplitError, FolderDataset, ForgeryDataset,
                        build_augmentation)
from pycrl.train.data.synthetic import SyntheticFaces


@pytest.fixture(scope="module")
def reals(tmp_path_factory):
    """real/ with two synthetic faces: one with landmarks beside it, one without."""
    root = tmp_path_factory.mktemp("reals")
    (root / "real").mkdir()
    gen = SyntheticFaces(seed=7)
    for name, ident in (("a", 0), ("b", 1)):
        img, lm = gen.frame(ident, 0)
        cv2.imwrite(str(root / "real" / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if name == "a":
            np.save(root / "real" / "a.npy", lm)
    return root


def test_pairs_each_real_with_a_blended_fake(reals):
    ds = ForgeryDataset(FolderDataset(reals))
    assert len(ds) == 4 and ds.labels.tolist() == [0, 0, 1, 1]
    for i in range(2):
        real, fake = ds[i], ds[i + 2]
        assert real["label"] == 0 and fake["label"] == 1
        assert fake["video_id"] == real["video_id"] + "#sbi" and fake["frame_path"] == real["frame_path"]
        assert float(real["mask"].abs().max()) == 0.0
        m = fake["mask"][0]
        assert m.shape == (256, 256) and float(m.max()) > 0.2
        changed = (fake["image"] != real["image"]).any(0)
        assert int(changed.sum()) > 500
        assert not bool((changed & (m <= 0)).any())  # only inside the blend mask


def test_fakes_are_seeded_and_change_with_the_epoch(reals):
    a = ForgeryDataset(FolderDataset(reals, seed=3))
    b = ForgeryDataset(FolderDataset(reals, seed=3))
    assert torch.equal(a[2]["image"], b[2]["image"])
    b.set_epoch(1)
    assert not torch.equal(a[2]["image"], b[2]["image"])


def test_needs_real_frames(tmp_path):
    (tmp_path / "fake").mkdir()
    cv2.imwrite(str(tmp_path / "fake" / "x.png"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(EmptySplitError, match="real frames"):
        ForgeryDataset(FolderDataset(tmp_path))


def test_augmentation_switch_and_config_keys():
    assert build_augmentation(False) is None
    assert build_augmentation({"enabled": False}) is None
    with pytest.raises(ValueError, match="rotate_limt"):
        build_augmentation({"rotate_limt": [-5, 5]})
    cfg = AugmentConfig.from_dict({"flip_prob": 0.2, "rotate_limit": [-5, 5], "quality_lower": 60})
    assert cfg.rotate_limit == (-5, 5) and cfg.flip_prob == 0.2 and cfg.blur_prob == 0.5


def test_flip_only_moves_image_mask_and_landmarks_together():
    only_flip = {"flip_prob": 1.0, "rotate_prob": 0.0, "blur_prob": 0.0, "brightness_prob": 0.0,
                 "compression_prob": 0.0}
    aug = build_augmentation(only_flip, resolution=32)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[:, :8] = 1.0
    out = aug(image=img, mask=mask, keypoints=np.array([[4.0, 10.0]], np.float32))
    np.testing.assert_array_equal(out["image"], img[:, ::-1])
    np.testing.assert_array_equal(out["mask"], mask[:, ::-1])
    assert abs(out["keypoints"][0, 0] - 28.0) <= 1.0 and out["keypoints"][0, 1] == pytest.approx(10.0)


def test_default_augmentation_is_reproducible_per_rng(reals):
    aug = build_augmentation(True, resolution=256)
    img = cv2.cvtColor(cv2.imread(str(reals / "real" / "a.png")), cv2.COLOR_BGR2RGB)
    outs = [aug(image=img, rng=np.random.default_rng(s))["image"] for s in (1, 1, 2)]
    assert outs[0].shape == img.shape and outs[0].dtype == np.uint8
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    # inside a dataset the augmentation runs per sample, after blending
    ds = ForgeryDataset(FolderDataset(reals, augment=aug))
    s = ds[3]
    assert s["image"].shape == (3, 256, 256) and s["mask"].shape == (1, 256, 256)


def test_missing_albumentations_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # as if it were not installed
    with pytest.raises(ImportError, match="albumentations==2.0.8"):
        build_augmentation(True)
