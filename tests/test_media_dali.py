"""The DALI path: what runs on DALI's CPU backend here (VP9/MJPEG decode, resize, normalise)."""

import numpy as np
import pytest

from pycrl.media import dali_available, sample_frames
from pycrl.media.synthetic import read_index, write_video


def test_dali_available_always_answers_with_a_reason():
    ok, reason = dali_available()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason


def _clip(path, frames, **kwargs):
    try:
        return write_video(path, frames, **kwargs)
    except Exception as exc:  # encoder missing from this PyAV build
        pytest.skip(f"cannot encode {kwargs.get('codec')}: {exc}")


def _dali():
    pytest.importorskip("nvidia.dali", reason="nvidia-dali-cuda120 is not installed")
    from pycrl.media import dali

    return dali


def test_gpu_pipeline_refuses_clearly_without_cuda():
    dali = _dali()
    ok, reason = dali.dali_available()
    if ok:
        pytest.skip("a CUDA device is visible: nothing to refuse")
    with pytest.raises(RuntimeError, match="no CUDA device|cannot query CUDA"):
        dali.build_video_pipeline(batch_size=1, device="gpu")


@pytest.mark.parametrize("codec,pix_fmt,ext", [("libvpx-vp9", "yuv420p", "webm"), ("mjpeg", "yuvj420p", "avi")])
def test_cpu_pipeline_matches_pyav_frames(tmp_path, codec, pix_fmt, ext):
    dali = _dali()
    path = _clip(tmp_path / f"clip.{ext}", 20, codec=codec, pix_fmt=pix_fmt)
    batcher = dali.DaliVideoBatcher(n=5, batch_size=2, size=32, device="cpu", num_threads=1)
    (out,) = batcher.run([path])  # one video in a batch of two: padded internally
    frames, model_input = out.to_numpy()
    reference = list(sample_frames(path, n=5))
    assert out.indices.tolist() == [f.index for f in reference] == np.linspace(0, 19, 5, dtype=int).tolist()
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    assert [read_index(f) for f in frames] == out.indices.tolist()
    assert np.abs(frames.astype(int) - np.stack([f.image for f in reference])).max() <= 3
    assert model_input.shape == (5, 3, 32, 32) and model_input.dtype == np.float32
    assert -1.0 <= model_input.min() and model_input.max() <= 1.0  # mean = std = 0.5
    assert model_input[:, :, :4].mean() > 0.9  # the white band stays at the top, channels first


def test_batcher_checks_its_batch_size(tmp_path):
    dali = _dali()
    batcher = dali.DaliVideoBatcher(n=2, batch_size=1, size=16, device="cpu", num_threads=1)
    with pytest.raises(ValueError):
        batcher.run([])
    path = _clip(tmp_path / "a.webm", 4, codec="libvpx-vp9")
    with pytest.raises(ValueError):
        batcher.run([path, path])
