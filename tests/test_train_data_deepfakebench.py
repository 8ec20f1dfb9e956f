"""DeepfakeBench JSON loader over a small tree built here."""

import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pycrl.train.data import (DatasetLayoutError, DatasetNotFoundError, DeepfakeBenchDataset, EmptySplitError,
                        MissingFramesError, UnknownLabelError)
from pycrl.train.data.deepfakebench import _sibling, parse_dataset_id, resolve_frame_path
from pycrl.train.data.labels import resolve_label
from pycrl.train.metrics import deepfakebench_video_key

REAL = "FaceForensics++/original_sequences/youtube/{c}/frames/{v}"
FAKE = "FaceForensics++/manipulated_sequences/{m}/{c}/frames/{v}"


def _write_frames(rgb: Path, folder: str, indices, value) -> list[str]:
    """8x8 frames whose grey level encodes (video value + frame index); returns relative paths."""
    (rgb / folder).mkdir(parents=True, exist_ok=True)
    rels = []
    for i in indices:
        cv2.imwrite(str(rgb / folder / f"{i:03d}.png"), np.full((8, 8, 3), value + i, np.uint8))
        rels.append(f"{folder}/{i:03d}.png")
    return rels


def _write_mask(rgb: Path, rel: str) -> None:
    path = rgb / rel.replace("/frames/", "/masks/")
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8), 255, np.uint8))


@pytest.fixture()
def tree(tmp_path):
    """rgb/ with FF-style frames and dataset_json/{FF-DF,FaceForensics++}.json."""
    rgb = tmp_path / "rgb"
    idx = list(range(0, 50, 5))  # 10 frames named by their original index: 000, 005, ..., 045
    real = _write_frames(rgb, REAL.format(c="c23", v="000"), idx, 0)
    real40 = _write_frames(rgb, REAL.format(c="c40", v="000"), idx[:3], 0)
    df = _write_frames(rgb, FAKE.format(m="Deepfakes", c="c23", v="000_003"), idx[:6], 100)
    f2f = _write_frames(rgb, FAKE.format(m="Face2Face", c="c23", v="000_003"), idx[:4], 150)
    for rel in df:
        _write_mask(rgb, rel)
    # the released JSONs hold Windows-style relative paths; mix in absolute and './' ones
    real_win = [p.replace("/", "\\") for p in reversed(real)]  # also out of order
    df_abs = [str(rgb / p) for p in df]
    f2f_dot = ["./" + p for p in f2f]
    ff_df = {"FF-DF": {
        "FF-real": {"train": {"c23": {"000": {"label": "FF-real", "frames": real_win}},
                              "c40": {"000": {"label": "FF-real", "frames": real40}}},
                    "test": {"c23": {}}},
        "FF-DF": {"train": {"c23": {"000_003": {"label": "FF-DF", "frames": df_abs}}}},
    }}
    ff = {"FaceForensics++": {
        "FF-DF": {"test": {"c23": {"000_003": {"label": "FF-DF", "frames": df}}}},
        "FF-F2F": {"test": {"c23": {"000_003": {"label": "FF-F2F", "frames": f2f_dot}}}},
    }}
    js = tmp_path / "dataset_json"
    js.mkdir()
    (js / "FF-DF.json").write_text(json.dumps(ff_df))
    (js / "FaceForensics++.json").write_text(json.dumps(ff))
    return {"rgb": rgb, "json": js, "real": real, "df": df}


def _grey(sample) -> int:
    """Undo the 0.5/0.5 normalisation to read back a frame's grey level."""
    return int(round(float((sample["image"][0, 0, 0] * 0.5 + 0.5) * 255)))


def test_loads_both_separators_sorted_and_linspace_sampled(tree):
    ds = DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train",
                              frame_num=4, resolution=8)
    real = [i for i, r in enumerate(ds.records) if r.label == 0]
    fake = [i for i, r in enumerate(ds.records) if r.label == 1]
    # real: 10 frames sorted by index, linspace(0, 9, 4) -> positions 0, 3, 6, 9 -> names 000, 015, 030, 045
    assert [_grey(ds[i]) for i in real] == [0, 15, 30, 45]
    # fake: 6 frames -> positions 0, 1, 3, 5 -> names 000, 005, 015, 025 (value 100 + index)
    assert [_grey(ds[i]) for i in fake] == [100, 105, 115, 125]
    s = ds[real[0]]
    assert s["image"].shape == (3, 8, 8) and s["image"].dtype == torch.float32
    assert s["label"] == 0 and s["video_id"] == "FF-real_000"
    assert Path(s["frame_path"]).is_file()
    assert ds[fake[0]]["video_id"] == "FF-DF_000_003"


def test_frame_num_none_keeps_every_frame_and_compression_is_selectable(tree):
    all_frames = DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train",
                                      frame_num=None, resolution=8)
    assert len(all_frames) == 10 + 6
    with pytest.warns(UserWarning, match="no compression level 'c40' under \\['FF-DF'\\]"):
        c40 = DeepfakeBenchDataset(json_folder=tree["json"], dataset="FF-DF_c40", rgb_dir=tree["rgb"],
                                   split="train", resolution=8)
    assert c40.compression == "c40" and len(c40) == 3  # FF-DF has no c40 fakes in this tree
    assert parse_dataset_id("FaceForensics++_c40") == ("FaceForensics++", "c40")
    assert parse_dataset_id("Celeb-DF-v2") == ("Celeb-DF-v2", None)


def test_video_ids_keep_methods_apart(tree):
    ds = DeepfakeBenchDataset(tree["json"] / "FaceForensics++.json", rgb_dir=tree["rgb"], split="test",
                              frame_num=32, resolution=8)
    assert sorted(set(ds.video_ids)) == ["FF-DF_000_003", "FF-F2F_000_003"]
    # DeepfakeBench's own key (the folder name) would merge the two videos
    assert {deepfakebench_video_key(r.path) for r in ds.records} == {"000_003"}
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 8, 8) and batch["label"].tolist() == [1, 1, 1, 1]
    assert len(batch["video_id"]) == 4


def test_masks_and_landmark_paths_follow_the_frames(tree):
    ds = DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train", frame_num=2,
                              resolution=8, with_mask=True)
    by_label = {ds[i]["label"]: ds[i] for i in range(len(ds))}
    assert by_label[1]["mask"].shape == (1, 8, 8) and float(by_label[1]["mask"].min()) == 1.0
    assert float(by_label[0]["mask"].max()) == 0.0  # reals have no mask file: zeros
    r = ds.records[0]
    assert "/landmarks/" in r.landmark_path.replace(os.sep, "/") and r.landmark_path.endswith(".npy")
    assert _sibling(Path("a/frames/v/frames/000.png"), "masks") == Path("a/frames/v/masks/000.png")  # last one
    assert _sibling(Path("a/v/000.png"), "masks") is None  # never the frame itself
    with pytest.raises(MissingFramesError, match="no landmarks"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train", frame_num=1,
                             resolution=8, with_landmarks=True)[0]


def test_resolve_frame_path_forms(tmp_path):
    root = tmp_path / "datasets"
    assert resolve_frame_path("A\\b\\c.png", root) == root / "A/b/c.png"
    assert resolve_frame_path("./A/b/c.png", root) == root / "A/b/c.png"
    assert resolve_frame_path("/abs/A/c.png", root) == Path("/abs/A/c.png")
    # a JSON that repeats the rgb_dir folder name ("./datasets\...") still lands inside rgb_dir
    (root / "A").mkdir(parents=True)
    (root / "A" / "c.png").write_bytes(b"")
    assert resolve_frame_path(".\\datasets\\A\\c.png".replace("\\", "/", 1), root) == root / "A" / "c.png"


def test_missing_json_rgb_dir_and_frames(tree):
    with pytest.raises(DatasetNotFoundError, match="JSON not found"):
        DeepfakeBenchDataset(tree["json"] / "Nope.json", rgb_dir=tree["rgb"])
    with pytest.raises(DatasetNotFoundError, match="rgb_dir"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"] / "nope")
    for rel in tree["real"][:2]:
        (tree["rgb"] / rel).unlink()
    with pytest.raises(MissingFramesError, match="2 listed frame"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train", frame_num=None)
    with pytest.warns(UserWarning, match="Dropped"):
        ds = DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train",
                                  frame_num=None, missing="drop", resolution=8)
    assert len(ds) == 8 + 6


def test_empty_split_and_unknown_label_key(tree):
    with pytest.raises(EmptySplitError, match="'test'.*splits with videos: \\['train'\\]"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="test")
    with pytest.raises(EmptySplitError):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="val")
    with pytest.raises(ValueError, match="split must be"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="training")

    data = json.loads((tree["json"] / "FF-DF.json").read_text())
    data["FF-DF"]["FF-XY"] = {"train": {"c23": {"000_009": {"label": "FF-XY", "frames": tree["df"]}}}}
    odd = tree["json"] / "Odd.json"
    odd.write_text(json.dumps(data))
    with pytest.raises(UnknownLabelError, match="'FF-XY'"):
        DeepfakeBenchDataset(odd, rgb_dir=tree["rgb"], split="train")
    ds = DeepfakeBenchDataset(odd, rgb_dir=tree["rgb"], split="train", label_dict={"FF-XY": 1}, resolution=8)
    assert {r.video_id: r.label for r in ds.records}["FF-XY_000_009"] == 1


def test_layout_errors(tree):
    bad = tree["json"] / "Bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="not valid JSON"):
        DeepfakeBenchDataset(bad, rgb_dir=tree["rgb"])
    with pytest.raises(DatasetLayoutError, match="no compression level 'raw'.*available: \\['c23', 'c40'\\]"):
        DeepfakeBenchDataset(tree["json"] / "FF-DF.json", rgb_dir=tree["rgb"], split="train", compression="raw")
    two = tree["json"] / "Two.json"
    two.write_text(json.dumps({"A": {}, "B": {}}))
    with pytest.raises(DatasetLayoutError, match="no top-level key 'Two'"):
        DeepfakeBenchDataset(two, rgb_dir=tree["rgb"])


def test_custom_dataset_without_compression_level(tmp_path):
    """Non-FF datasets (Celeb-DF, DFDC, ...) list videos straight under the split."""
    rgb = tmp_path
    real = _write_frames(rgb, "Celeb-DF-v2/YouTube-real/frames/00170", [0, 1, 2], 10)
    fake = _write_frames(rgb, "Celeb-DF-v2/Celeb-synthesis/frames/id0_id1_0000", [0, 1], 200)
    (tmp_path / "Celeb-DF-v2.json").write_text(json.dumps({"Celeb-DF-v2": {
        "CelebDFv2_real": {"test": {"00170": {"label": "CelebDFv2_real", "frames": real}}},
        "CelebDFv2_fake": {"test": {"id0_id1_0000": {"label": "CelebDFv2_fake", "frames": fake}}},
    }}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = DeepfakeBenchDataset(tmp_path / "Celeb-DF-v2.json", rgb_dir=rgb, split="test", resolution=8)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert resolve_label("MyCam_real") == 0 and resolve_label("MyCam_Fake") == 1
