"""pycrl.Detector end to end on real media, with a small CRL model folder."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

import pycrl
from pycrl.media.synthetic import write_video

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photo")
torch = pytest.importorskip("torch", reason="building the test model needs torch")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small CRL folder with its ONNX export, as training would leave it."""
    from pycrl import weights
    from pycrl.models import create_model
    from pycrl.export import export_onnx

    torch.manual_seed(0)
    m = create_model("crl", encoder="lite", lite_widths=(8, 16, 16, 32, 48, 64, 96)).train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.rand(8, 3, 64, 64) * 2 - 1)
        m.real_centre.copy_(torch.randn(96))
    m.eval()
    folder = tmp_path_factory.mktemp("models") / "crl-small"
    weights.save(m, folder, {"input_size": [3, 64, 64], "decision_threshold": 0.5, "name": "crl-small"})
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def detector(model_dir):
    with pycrl.Detector(model_dir, backend="onnxruntime", frames=4, heatmap_size=16) as det:
        yield det


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("media")
    photo = cv2.resize(skimage_data.astronaut(), (320, 320))
    cv2.imwrite(str(root / "face.png"), photo[..., ::-1])
    frames = [np.roll(photo, k, axis=1) for k in range(0, 20, 2)]
    write_video(root / "face.mp4", frames, width=320, height=320, rate=10)
    write_video(root / "noface.mp4", [np.full((48, 64, 3), 90, np.uint8)] * 5, rate=10)
    (root / "empty.mp4").write_bytes(b"")
    (root / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    return root


def test_score_batch_accepts_crops_and_normalised_arrays(detector):
    crops = np.random.default_rng(0).integers(0, 255, (5, 80, 80, 3), dtype=np.uint8)
    p = detector.score_batch(crops)
    assert p.shape == (5,) and ((p >= 0) & (p <= 1)).all()
    x = detector.prepare(list(crops))
    np.testing.assert_allclose(detector.score_batch(x), p, atol=1e-6)
    with pytest.raises(ValueError, match="faces"):
        detector.score_batch(np.zeros((2, 3, 64, 64), np.float32)[:, :2])
    with pytest.raises(TypeError, match="faces"):
        detector.score_batch("not an array")


def test_score_image_finds_the_face_and_reports_everything(detector, media):
    r = detector.score_image(media / "face.png")
    assert r.status == "ok", r.message
    assert len(r.faces) == 1 and 0 <= r.score <= 1
    assert r.label in ("real", "fake") and r.threshold == 0.5
    face = r.faces[0]
    x0, y0, x1, y1 = face.box
    assert 100 < x0 < x1 < 250 and 30 < y0 < y1 < 200  # the astronaut's face
    assert face.compactness is not None and 0 <= face.compactness <= 4
    assert face.heatmap.shape == (16, 16)
    d = r.to_dict()
    json.dumps(d)  # JSON-ready, pictures left out
    assert "crop" not in d["faces"][0] and d["backend"] == "onnxruntime" and d["model"] == "crl-small"


def test_score_videos_streams_in_order_and_never_loses_an_item(detector, media):
    paths = [media / "junk.mp4", media / "face.mp4", media / "missing.mp4", media / "noface.mp4",
             media / "empty.mp4", media / "face.png"]
    results = list(detector.score_videos(paths))
    assert [r.source for r in results] == [str(p) for p in paths]
    assert [r.status for r in results] == ["error", "ok", "error", "no_face", "error", "ok"]
    video = results[1]
    assert video.frames_sampled == 4 and len(video.faces) == 4
    assert [f.timestamp for f in video.faces] == sorted(f.timestamp for f in video.faces)
    assert video.score == pytest.approx(np.mean([f.score for f in video.faces]), abs=1e-6)
    assert results[0].error_type and "junk.mp4" in results[0].message
    assert {"decode", "detect", "infer"} <= set(video.timings)


def test_a_video_and_the_same_frames_as_images_agree(detector, media):
    a = detector.score_video(media / "face.mp4")
    b = detector.score_video(media / "face.mp4")
    assert a.score == b.score  # deterministic


def test_cli_scores_with_jsonl_and_heatmaps(model_dir, media, tmp_path):
    out = tmp_path / "out.jsonl"
    maps = tmp_path / "maps"
    proc = subprocess.run(
        [sys.executable, "-m", "pycrl.cli", "score", str(media / "face.png"), str(media / "junk.mp4"),
         "--model", str(model_dir), "--backend", "onnxruntime", "--jsonl", str(out), "--heatmaps", str(maps),
         "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert len(list(maps.glob("*.png"))) == 1
    assert "2 inputs: 1 scored, 0 without faces, 1 errors" in proc.stderr
    usage = subprocess.run([sys.executable, "-m", "pycrl.cli", "score", str(tmp_path / "nothing-*.mp4")],
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "nothing matches" in usage.stderr


def test_bad_options_are_refused_up_front(model_dir):
    for kw in (dict(sampling="random"), dict(faces="some"), dict(device="tpu"), dict(batch_size=0),
               dict(aggregation="median"), dict(decoder="gstreamer"), dict(decoder="dali", sampling="keyframes")):
        with pytest.raises(ValueError):
            pycrl.Detector(model_dir, backend="onnxruntime", **kw)
    with pytest.raises(ValueError, match="not a pycrl model folder"):
        pycrl.Detector("/nonexistent-model")


def test_inference_never_imports_torch():
    """The bundled default model scores a clip on OpenVINO / ONNX Runtime with torch absent from sys.modules."""
    code = (
        "import sys, pycrl\n"
        "from pycrl.model_folder import ASSETS\n"
        "det = pycrl.Detector(frames=4)\n"
        "r = det.score_video(ASSETS / 'samples' / 'astronaut_selfblend.mp4')\n"
        "assert r.status == 'ok' and len(r.faces) == 4, r\n"
        "assert det.backend in ('openvino', 'onnxruntime'), det.backend\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')], 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_dali_decoder_gives_the_same_faces_as_pyav(model_dir, media, tmp_path):
    """DALI's CPU decoder (VP9; its CPU path cannot read H.264) through the Detector; the GPU
    path is the same code with device='cuda'."""
    pytest.importorskip("nvidia.dali", reason="DALI (the [gpu] extra) is not installed")
    import av
    import cv2

    photo = cv2.resize(skimage_data.astronaut(), (320, 320))
    path = tmp_path / "face.webm"
    if "libvpx-vp9" not in av.codecs_available:
        pytest.skip("this FFmpeg build has no VP9 encoder")
    write_video(path, [np.roll(photo, k, axis=1) for k in range(0, 16, 2)], width=320, height=320,
                rate=10, codec="libvpx-vp9")
    results = {}
    for decoder in ("pyav", "dali"):
        with pycrl.Detector(model_dir, backend="onnxruntime", frames=4, decoder=decoder) as det:
            results[decoder] = det.score_video(path)
    a, b = results["pyav"], results["dali"]
    assert a.status == b.status == "ok", (a.message, b.message)
    assert [f.frame_index for f in a.faces] == [f.frame_index for f in b.faces]
    assert b.score == pytest.approx(a.score, abs=0.05)  # decoders differ by a few grey levels
