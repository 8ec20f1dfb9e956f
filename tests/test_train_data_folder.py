"""Plain folder layout (real/, fake/) with images, frame folders and an MP4 made here."""

import cv2
import numpy as np
import pytest

from pycrl.train.data import DatasetLayoutError, DatasetNotFoundError, EmptySplitError, FolderDataset
from pycrl.train.data.sampling import linspace_indices
from pycrl.train.data.video import count_frames, read_frames, write_video


def _solid(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


@pytest.fixture()
def root(tmp_path):
    (tmp_path / "real" / "clip7").mkdir(parents=True)
    (tmp_path / "fake").mkdir()
    cv2.imwrite(str(tmp_path / "real" / "a.png"), _solid(40))
    np.save(tmp_path / "real" / "a.npy", np.full((68, 2), 16.0, np.float32))  # landmarks beside the image
    for i in range(10):
        cv2.imwrite(str(tmp_path / "real" / "clip7" / f"{i:03d}.png"), _solid(5 * i))
    # 20 frames whose grey level is 10 * index, so a decoded frame tells which one it is
    write_video(tmp_path / "fake" / "b.mp4", (_solid(10 * i) for i in range(20)), fps=10)
    return tmp_path


def _grey(sample) -> float:
    return float((sample["image"].mean() * 0.5 + 0.5) * 255)


def test_linspace_indices():
    assert linspace_indices(20, 4) == [0, 6, 12, 19]
    assert linspace_indices(3, 8) == [0, 1, 2]
    assert linspace_indices(10, None) == list(range(10))
    assert linspace_indices(0, 4) == []
    assert linspace_indices(5, 1) == [0]


def test_video_helpers_decode_only_the_chosen_frames(root):
    path = root / "fake" / "b.mp4"
    assert count_frames(path) == 20
    frames = read_frames(path, [19, 0, 6])
    assert sorted(frames) == [0, 6, 19]
    for i, f in frames.items():
        assert f.shape == (32, 32, 3) and f.dtype == np.uint8
        assert abs(float(f.mean()) - 10 * i) < 4  # lossy, but the right frame


def test_folder_layout_images_frame_folders_and_videos(root):
    ds = FolderDataset(root, frames_per_video=4, resolution=16)
    ids = ds.video_ids
    assert ids.count("real/a.png") == 1  # a loose image is a video of its own
    assert ids.count("real/clip7") == 4  # frame folder: linspace-sampled
    assert ids.count("fake/b.mp4") == 4
    assert len(ds) == 9
    by_id = {}
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (3, 16, 16)
        by_id.setdefault(s["video_id"], []).append((s["label"], round(_grey(s))))
    assert [v for _, v in by_id["real/clip7"]] == [0, 15, 30, 45]  # frames 0, 3, 6, 9
    video = by_id["fake/b.mp4"]
    assert {lab for lab, _ in video} == {1}
    for (_, got), want in zip(video, [0, 60, 120, 190]):
        assert abs(got - want) < 4
    assert ds[[i for i, v in enumerate(ids) if v == "fake/b.mp4"][0]]["frame_path"].endswith("b.mp4#0")
    # landmarks beside an image are found and scaled to the resized frame (32 -> 16 px)
    a = ids.index("real/a.png")
    assert ds.load_landmarks(a, (32, 32))[0].tolist() == [8.0, 8.0]
    assert ds.records[ids.index("real/clip7")].landmark_path is None


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        FolderDataset(tmp_path / "nope")
    with pytest.raises(DatasetLayoutError, match="real/"):
        FolderDataset(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "notes.txt").write_text("no frames here")
    with pytest.raises(EmptySplitError):
        FolderDataset(tmp_path)
