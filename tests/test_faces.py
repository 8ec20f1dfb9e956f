"""Face detection and DeepfakeBench-style alignment on a real photo (scikit-image's astronaut)."""

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib", reason="dlib-bin (prebuilt dlib) is not installed")

from no_face_images import NO_FACE_IMAGES  # noqa: E402

from pycrl.faces import (  # noqa: E402
    Face,
    FaceDetector,
    LandmarkModelNotFoundError,
    crop_template,
    find_landmark_model,
    five_points,
    similarity_lstsq,
)

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photo")


@pytest.fixture(scope="module")
def detector():
    try:
        return FaceDetector()
    except LandmarkModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


def _in_crop(face: Face, xy):
    return np.asarray(xy) @ face.matrix[:, :2].T + face.matrix[:, 2]


def test_template_matches_deepfakebench_numbers():
    tpl = crop_template(256, 1.3)
    # left eye: ((30.2946 + 8) * 256 / 112 + 38.4) / 1.3 and (51.6963 * 256 / 112 + 38.4) / 1.3
    assert tpl[0] == pytest.approx([96.8696, 120.4331], abs=1e-3)
    assert tpl.mean(axis=0)[0] == pytest.approx(128.0, abs=1.5)  # horizontally centred
    # scale 1.0 puts the points where the plain (x + 8) template, resized to 256, has them
    assert crop_template(256, 1.0)[4] == pytest.approx([(62.7299 + 8) * 256 / 112, 92.2041 * 256 / 112])


def test_similarity_lstsq_recovers_a_known_transform_and_matches_skimage():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    assert similarity_lstsq(src, dst) == pytest.approx(np.column_stack([rot, shift]))
    transform = pytest.importorskip("skimage.transform")
    noisy = dst + rng.normal(0, 2, dst.shape)
    reference = transform.SimilarityTransform.from_estimate(src, noisy).params[:2]
    assert similarity_lstsq(src, noisy) == pytest.approx(reference, abs=1e-9)


def test_five_points_from_68_points_uses_deepfakebench_parts():
    marks = np.arange(68 * 2, dtype=float).reshape(68, 2)
    assert five_points(marks).tolist() == marks[[37, 44, 30, 49, 55]].tolist()
    with pytest.raises(ValueError):
        five_points(np.zeros((7, 2)))


def test_five_points_from_dlib5_put_eyes_at_corner_midpoints():
    parts = np.array([[150.0, 100], [130, 100], [70, 100], [90, 100], [110, 135]])  # ideal upright face
    pts = five_points(parts)
    assert pts[:2].tolist() == [[80.0, 100.0], [140.0, 100.0]]
    assert pts[2] == pytest.approx([110.0, 135.0 - 0.16 * 60])
    assert pts[3, 1] == pytest.approx(pts[4, 1], abs=0.5) and pts[3, 0] < pts[2, 0] < pts[4, 0]


def test_astronaut_has_exactly_one_face(detector, astronaut):
    faces = detector(astronaut, mode="all")
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200 and face.score > 0.5
    assert face.landmarks.shape == (5, 2) and face.points.shape == (5, 2)
    assert face.crop.shape == (256, 256, 3) and face.crop.dtype == np.uint8


def test_aligned_crop_puts_the_eyes_level_on_the_template(detector, astronaut):
    face = detector(astronaut)[0]
    tpl = crop_template(256, 1.3)
    assert _in_crop(face, face.points[:2]) == pytest.approx(tpl[:2], abs=1.5)
    # what DeepfakeBench does next: detect again on the aligned crop
    again = detector(face.crop)
    assert len(again) == 1
    eyes = again[0].points[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) <= 3.0  # level
    assert eyes == pytest.approx(tpl[:2], abs=4.0)


@pytest.mark.parametrize("angle", [-15, 15])
def test_alignment_undoes_head_roll(detector, astronaut, angle):
    turn = cv2.getRotationMatrix2D((220.0, 120.0), angle, 1.0)
    rolled = cv2.warpAffine(astronaut, turn, (512, 512))
    face = detector(rolled)[0]
    eyes = detector(face.crop)[0].points[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) <= 3.0
    assert eyes == pytest.approx(crop_template()[:2], abs=4.0)


def test_boxes_are_mapped_back_from_the_downscaled_frame(detector, astronaut):
    big = cv2.resize(astronaut, (1280, 1280), interpolation=cv2.INTER_LINEAR)
    small_face, big_face = detector(astronaut)[0], detector(big)[0]
    assert big_face.box == pytest.approx(small_face.box * 2.5, abs=25)  # HOG boxes snap to pyramid levels
    assert big_face.points == pytest.approx(small_face.points * 2.5, abs=5)


def test_crop_coordinates_map_back_to_the_frame(detector, astronaut):
    face = detector(astronaut)[0]
    assert face.to_frame(_in_crop(face, face.points)) == pytest.approx(face.points)
    heat = np.ones((16, 16), np.float32)  # a model's low-resolution map
    back = face.heatmap_to_frame(heat, astronaut.shape)
    assert back.shape == astronaut.shape[:2]
    cx, cy = face.points[:2].mean(axis=0).astype(int)
    assert back[cy, cx] == pytest.approx(1.0) and back[500, 10] == 0.0


@pytest.mark.parametrize("image", list(NO_FACE_IMAGES.values()), ids=list(NO_FACE_IMAGES))
def test_no_face_gives_an_empty_list(detector, image):
    assert detector(image, mode="all") == []


def test_bad_inputs_and_settings(detector):
    with pytest.raises(TypeError):
        detector(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError):
        detector(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError):
        FaceDetector(mode="first")


def test_missing_landmark_model_is_a_typed_error(tmp_path, monkeypatch):
    with pytest.raises(LandmarkModelNotFoundError, match="face-recognition-models"):
        find_landmark_model(tmp_path / "nope.dat")
    monkeypatch.setenv("PYCRL_LANDMARK_MODEL", str(tmp_path / "nope.dat"))
    with pytest.raises(FileNotFoundError):
        FaceDetector()
