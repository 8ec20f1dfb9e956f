"""On-the-fly fakes from real faces (self-blends, identity swaps, upsampling artefacts), the
face-corpus data source, and the upload degradations of the training augmentation."""

import cv2
import numpy as np
import pytest
import torch

from pycrl.train.data import FaceCorpusDataset, FolderDataset, ForgeryDataset, build_augmentation, upsample_artefact
from pycrl.train.data.augment import AugmentConfig, h264_round_trip
from pycrl.train.data.face_template import default_landmarks
from pycrl.train.data.forgeries import family_of
from pycrl.train.data.synthetic import SyntheticFaces


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """real/<person>/<k>.png: three procedural people with two photos each, with landmarks."""
    root = tmp_path_factory.mktemp("people")
    faces = SyntheticFaces(seed=5)
    for person in range(3):
        for k in range(2):
            img, lm = faces.frame(person, k)
            folder = root / "real" / f"p{person}"
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{k}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            np.save(folder / f"{k}.npy", lm)
    return root


def test_synthetic_fixture_has_landmarks(people):
    ds = FolderDataset(people, frames_per_video=None)
    assert len(ds) == 6 and all(r.landmark_path for r in ds.records)


@pytest.mark.parametrize("family", ["sbi", "swap", "upsample"])
def test_each_family_changes_only_what_its_mask_covers(people, family):
    ds = ForgeryDataset(FolderDataset(people, frames_per_video=None), {family: 1.0})
    n = len(ds) // 2
    for i in range(n):
        real, fake = ds.raw(i), ds.raw(n + i)
        assert real["label"] == 0 and fake["label"] == 1 and family_of(fake["video_id"]) == family
        assert family_of(real["video_id"]) is None
        changed = np.any(real["image"] != fake["image"], axis=-1)
        assert changed.any() and not changed[fake["mask"] <= 0].any()
        assert fake["mask"].max() > 0.2


def test_swaps_take_the_donor_from_another_person(people, monkeypatch):
    import pycrl.train.data.forgeries as forgeries

    seen = []
    real_swap = forgeries.swap_face

    def spy(target, tl, source, sl, rng, mask_config):
        seen.append(source.copy())
        return real_swap(target, tl, source, sl, rng, mask_config)

    monkeypatch.setattr(forgeries, "swap_face", spy)
    base = FolderDataset(people, frames_per_video=None)
    ds = ForgeryDataset(base, {"swap": 1.0}, repeats=3)
    n = len(ds) // 2
    for i in range(n):
        target = ds.base.records[ds.reals[i % len(ds.reals)]].video_id
        ds.raw(n + i)
        donor = seen[-1]
        same_person = [j for j, r in enumerate(base.records) if r.video_id == target]
        assert not any(np.array_equal(donor, base.load_rgb(j)[0]) for j in same_person)


def test_repeats_families_labels_and_determinism(people):
    base = FolderDataset(people, frames_per_video=None, seed=2)
    ds = ForgeryDataset(base, {"sbi": 1.0, "swap": 1.0, "upsample": 1.0}, repeats=4)
    assert len(ds) == 2 * 6 * 4 and ds.labels.tolist() == [0] * 24 + [1] * 24
    fams = {family_of(ds.raw(24 + i)["video_id"]) for i in range(24)}
    assert fams == {"sbi", "swap", "upsample"}
    ids = {ds.raw(i)["video_id"] for i in range(24)}
    assert len(ids) == 3 * 4  # each copy of a person is its own video
    again = ForgeryDataset(FolderDataset(people, frames_per_video=None, seed=2), {"sbi": 1, "swap": 1,
                                                                                 "upsample": 1}, repeats=4)
    assert torch.equal(ds[30]["image"], again[30]["image"])
    again.set_epoch(1)
    assert not torch.equal(ds[30]["image"], again[30]["image"])


def test_bad_family_settings_are_refused(people, tmp_path):
    base = FolderDataset(people, frames_per_video=None)
    with pytest.raises(ValueError, match="unknown fake families"):
        ForgeryDataset(base, {"gan": 1.0})
    with pytest.raises(ValueError, match="positive weight"):
        ForgeryDataset(base, {"sbi": 0.0})
    one = tmp_path / "one"
    (one / "real" / "p0").mkdir(parents=True)
    cv2.imwrite(str(one / "real" / "p0" / "0.png"), np.full((64, 64, 3), 128, np.uint8))
    from pycrl.train.data import EmptySplitError

    with pytest.raises(EmptySplitError, match="two people"):
        ForgeryDataset(FolderDataset(one, frames_per_video=None), {"swap": 1.0})


def test_upsample_artefact_is_a_low_resolution_copy_of_the_face():
    noise = np.asarray(np.random.default_rng(1).integers(0, 256, (128, 128, 3)), np.uint8)
    yy, xx = np.mgrid[0:128, 0:128]
    smooth = np.stack([xx * 2, yy * 2, (xx + yy)], -1).clip(0, 255).astype(np.uint8)
    for seed in range(6):  # covers the nearest, zero-insertion and bilinear modes
        for img, lo, hi in ((smooth, 0, 12), (noise, 25, 255)):
            fake, mask = upsample_artefact(img, default_landmarks(128, 128), np.random.default_rng(seed))
            inside = mask >= 0.99 * mask.max()
            diff = np.abs(fake.astype(np.float32) - img)[inside].mean() / mask.max()
            # low frequencies survive (a smooth face stays itself), fine detail does not
            assert lo <= diff <= hi, (seed, diff)


def test_h264_round_trip_degrades_but_keeps_the_picture():
    img = cv2.GaussianBlur(np.asarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), np.uint8),
                           (0, 0), 2.0)
    out = h264_round_trip(img, 36)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    mse = np.mean((out.astype(np.float64) - img) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 25
    assert h264_round_trip(img[:63], 30) is not None  # odd sides are passed through untouched


def test_upload_degradations_are_config_keys_and_off_by_default():
    assert AugmentConfig().h264_prob == 0 and AugmentConfig().downscale_prob == 0
    cfg = AugmentConfig.from_dict({"h264_prob": 1.0, "h264_crf": [30, 30], "downscale_prob": 1.0,
                                   "noise_prob": 1.0, "affine_prob": 1.0})
    aug = build_augmentation(cfg, 64)
    img = np.full((64, 64, 3), 120, np.uint8)
    img[16:48, 16:48] = 200
    out = aug(image=img, rng=np.random.default_rng(0))["image"]
    assert out.shape == img.shape and not np.array_equal(out, img)


def test_face_corpus_source_through_the_config(tmp_path):
    from pycrl.train.engine.data import build_dataset
    from corpus_fixture import tiny_corpus

    root = tiny_corpus(tmp_path)
    ds = FaceCorpusDataset(root, "all", resolution=64)
    assert len(ds) == 3 and all(r.landmark_path for r in ds.records)
    data = {"resolution": 64, "mean": [0.5] * 3, "std": [0.5] * 3, "batch_size": 2,
            "train": {"type": "faces", "root": str(root), "split": "all", "fakes": {"sbi": 1, "swap": 1},
                      "repeats": 2}}
    built = build_dataset(data, "train", train=False, seed=0)
    assert len(built) == 12 and built[7]["image"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="split"):
        FaceCorpusDataset(root, "test")


def test_deepfakebench_reals_with_every_fake_family(synth_task):
    """The README's recipe on DeepfakeBench data: the real videos of a DeepfakeBench JSON, with
    fakes of every family made from them (81/68-point landmarks from the layout's landmarks/)."""
    from pycrl.train.engine.data import build_dataset

    data = {"resolution": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
            "train": {"type": "deepfakebench", "json": str(synth_task / "dataset_json" / "Synthetic.json"),
                      "rgb_dir": str(synth_task), "split": "val", "frame_num": None,
                      "label_keys": ["Synthetic_real"], "fakes": {"sbi": 1, "swap": 1, "upsample": 1}}}
    ds = build_dataset(data, "train", train=False, seed=0)
    n = len(ds) // 2
    assert n == 60 and ds.labels.tolist() == [0] * n + [1] * n  # 30 real videos of 2 frames
    assert all(r.landmark_path for r in ds.base.records)
    families = {family_of(ds.raw(n + i)["video_id"]) for i in range(n)}
    assert families == {"sbi", "swap", "upsample"}
