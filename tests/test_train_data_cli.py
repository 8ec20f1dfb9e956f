"""``pycrl train make-synthetic`` end to end, and loading what it wrote."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pycrl.train.data import DeepfakeBenchDataset, FolderDataset

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pycrl.cli", "train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "a"
    res = _run("make-synthetic", "--out", str(out), "--identities", "4", "--frames-per-id", "2",
               "--val-identities", "1", "--test-identities", "1", "--seed", "5", "--videos", "--clip-frames", "4")
    assert res.returncode == 0, res.stderr
    return out, res


def test_reports_what_it_wrote_with_a_progress_bar(made):
    out, res = made
    assert "identities" in res.stderr and "100%" in res.stderr  # tqdm on stderr
    assert "wrote 24 frames of 4 identities (train 2, val 1, test 1)" in res.stdout
    assert str(out / "dataset_json" / "Synthetic.json") in res.stdout


def test_json_is_deepfakebench_shaped_and_split_by_identity(made):
    out, _ = made
    data = json.loads((out / "dataset_json" / "Synthetic.json").read_text())
    assert list(data) == ["Synthetic"]
    table = data["Synthetic"]
    assert set(table) == {"Synthetic_real", "Synthetic_FakeSBI", "Synthetic_FakeSwap"}
    for key, splits in table.items():
        assert set(splits) == {"train", "val", "test"}
        for split, videos in splits.items():
            for name, entry in videos.items():
                assert entry["label"] == key and len(entry["frames"]) == 2
                # clip of 4 frames, 2 kept with linspace: original indices 000 and 003
                assert [Path(f).name for f in entry["frames"]] == ["000.png", "003.png"]
                assert all((out / f).is_file() for f in entry["frames"] + entry.get("masks", []))
    real = {s: set(v) for s, v in table["Synthetic_real"].items()}
    assert real == {"train": {"000", "001"}, "val": {"002"}, "test": {"003"}}
    for split, videos in table["Synthetic_FakeSwap"].items():
        for name in videos:
            target, source = (int(x) for x in name.split("_"))
            assert f"{target:03d}" in real[split]
            # the face pasted in comes from the same split, or from a donor no split shows
            assert f"{source:03d}" in real[split] or source >= 4
    assert set(table["Synthetic_FakeSBI"]["test"]) == {"003"}


def test_same_seed_same_bytes(made, tmp_path):
    out, _ = made
    res = _run("make-synthetic", "--out", str(tmp_path), "--identities", "4", "--frames-per-id", "2",
               "--val-identities", "1", "--test-identities", "1", "--seed", "5", "--clip-frames", "4", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    first = sorted(p.relative_to(out) for p in (out / "Synthetic").rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path) for p in (tmp_path / "Synthetic").rglob("*") if p.is_file())
    assert first == second and len(first) == 24 * 2 + 16  # frames + landmarks, masks of the 16 fake frames
    for rel in first:
        assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
    assert (out / "dataset_json/Synthetic.json").read_bytes() == (tmp_path / "dataset_json/Synthetic.json").read_bytes()


def test_loaders_read_what_it_wrote(made):
    out, _ = made
    train = DeepfakeBenchDataset(out / "dataset_json" / "Synthetic.json", rgb_dir=out, split="train",
                                 with_mask=True, with_landmarks=True)
    assert len(train) == 12 and sorted(set(train.labels.tolist())) == [0, 1]
    assert len(set(train.video_ids)) == 6  # real 000 and FakeSBI 000 stay two videos
    s = train[len(train) - 1]
    assert s["image"].shape == (3, 256, 256) and s["landmark"].shape == (68, 2)
    clips = FolderDataset(out / "videos" / "test", frames_per_video=3)
    assert sorted(set(clips.video_ids)) == ["fake/sbi_003.mp4", "fake/swap_003_006.mp4", "real/003.mp4"]
    assert len(clips) == 9 and clips[4]["image"].shape == (3, 256, 256)


def test_refuses_to_overwrite_and_checks_counts(made):
    out, _ = made
    res = _run("make-synthetic", "--out", str(out), "--identities", "4", "--frames-per-id", "2", "--no-progress")
    assert res.returncode == 2 and "--overwrite" in res.stderr
    res = _run("make-synthetic", "--out", str(out / "x"), "--identities", "2", "--frames-per-id", "2",
               "--val-identities", "1", "--test-identities", "1", "--no-progress")
    assert res.returncode == 2 and "cannot hold" in res.stderr


def test_help_teaches():
    top = _run("--help")
    assert top.returncode == 0 and "make-synthetic" in top.stdout and "examples:" in top.stdout
    sub = _run("make-synthetic", "--help")
    assert sub.returncode == 0
    for word in ("--identities", "--frames-per-id", "--val-identities", "--videos", "examples:", "Synthetic.json"):
        assert word in sub.stdout
