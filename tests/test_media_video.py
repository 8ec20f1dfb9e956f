"""Video sampling with PyAV on clips made here: which frames, how many converted, orientation."""

import av
import numpy as np
import pytest

from pycrl.limits import Limits
from pycrl.media import (
    MediaLimitError,
    MediaTimeoutError,
    probe_video,
    sample_frames,
)
from pycrl.media.synthetic import pick_codec, read_index, write_video
from pycrl.media.video import plan_uniform, uniform_indices

CODEC = pick_codec()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": write_video(d / "plain.mp4", 60, codec=CODEC, gop=12),
        "mkv": write_video(d / "plain.mkv", 45, codec=CODEC),  # Matroska: no frame count in the header
        "vfr": write_video(d / "vfr.mp4", 30, codec=CODEC, durations_ms=[60, 20, 40]),
    }


def _indices(frames):
    return [f.index for f in frames]


def test_uniform_takes_linspace_indices_and_converts_only_those(clips):
    sampler = sample_frames(clips["mp4"], n=8)
    frames = list(sampler)
    expected = np.linspace(0, 59, 8, dtype=int).tolist()
    assert _indices(frames) == expected
    assert [read_index(f.image) for f in frames] == expected  # the pixels are those frames
    assert sampler.stats.converted == 8 and sampler.stats.decoded == 60
    assert sampler.stats.count_source == "container" and sampler.stats.incomplete is None
    assert all(f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3) for f in frames)
    assert all(f.image.flags.c_contiguous for f in frames)
    times = [f.time for f in frames]
    assert times[0] == 0.0 and all(b > a for a, b in zip(times[:-1], times[1:], strict=True))
    assert times == pytest.approx([i / 25 for i in expected], abs=1e-6)


def test_frames_are_produced_lazily(clips):
    sampler = sample_frames(clips["mp4"], n=4)
    it = iter(sampler)
    first = next(it)
    assert first.index == 0
    assert sampler.stats.decoded < 20  # not the whole 60-frame video
    it.close()


def test_matroska_without_frame_count_is_counted_by_a_packet_scan(clips):
    sampler = sample_frames(clips["mkv"], n=6)
    frames = list(sampler)
    assert sampler.stats.count_source == "packet-scan" and sampler.stats.total_frames == 45
    assert _indices(frames) == np.linspace(0, 44, 6, dtype=int).tolist()
    assert [read_index(f.image) for f in frames] == _indices(frames)


def test_variable_frame_rate_timestamps_come_from_pts(clips):
    frames = list(sample_frames(clips["vfr"], n=30))
    assert _indices(frames) == list(range(30))
    starts = np.cumsum([0] + [[60, 20, 40][i % 3] for i in range(29)]) / 1000.0
    assert [f.time for f in frames] == pytest.approx(starts.tolist(), abs=1e-3)
    assert [read_index(f.image) for f in frames] == list(range(30))


def test_more_samples_than_frames_gives_each_frame_once(clips):
    frames = list(sample_frames(clips["mkv"], n=100))
    assert _indices(frames) == list(range(45))


def test_bytes_input_matches_path_input(clips):
    with open(clips["mp4"], "rb") as fh:
        data = fh.read()
    from_bytes = [(f.index, read_index(f.image)) for f in sample_frames(data, n=5)]
    from_path = [(f.index, read_index(f.image)) for f in sample_frames(clips["mp4"], n=5)]
    assert from_bytes == from_path


@pytest.mark.parametrize("rotation,k", [(90, 1), (-90, -1), (180, 2)])
def test_display_rotation_is_applied(tmp_path, rotation, k):
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    path = write_video(tmp_path / "rot.mp4", 10, codec=CODEC, rotation=rotation)
    sampler = sample_frames(path, n=3)
    frames = list(sampler)
    expected_shape = (64, 48, 3) if rotation % 180 else (48, 64, 3)
    assert all(f.image.shape == expected_shape for f in frames)
    # Undo the expected counter-clockwise turn: the index band must be upright again.
    assert [read_index(np.rot90(f.image, -k)) for f in frames] == _indices(frames)
    assert sampler.info.rotation == rotation % 360
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (expected_shape[1], expected_shape[0], rotation % 360)


@pytest.mark.parametrize(
    "codec,pix_fmt,ext",
    [("libx264", "yuv420p10le", "mp4"), ("ffv1", "gray", "mkv"), ("ffv1", "gray16le", "mkv"),
     ("mjpeg", "yuvj420p", "avi"), ("libx264", "yuv444p", "mp4")],
)
def test_pixel_formats_become_rgb24(tmp_path, codec, pix_fmt, ext):
    try:
        path = write_video(tmp_path / f"fmt.{ext}", 6, codec=codec, pix_fmt=pix_fmt)
    except (av.FFmpegError, ValueError) as exc:
        pytest.skip(f"encoder {codec}/{pix_fmt} unavailable here: {exc}")
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    frames = list(sample_frames(path, n=3))
    assert [f.image.shape for f in frames] == [(48, 64, 3)] * 3
    assert [read_index(f.image) for f in frames] == [0, 2, 5]
    top = frames[0].image[:8].astype(int)
    assert top.min() > 230  # white band stays white: range and matrix handled


def test_keyframes_mode_decodes_only_key_frames(clips):
    with av.open(clips["mp4"]) as c:  # ground truth from a full decode
        keys = [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]
    assert len(keys) >= 4
    sampler = sample_frames(clips["mp4"], n=3, mode="keyframes")
    frames = list(sampler)
    chosen = [keys[i] for i in uniform_indices(len(keys), 3)]
    assert _indices(frames) == chosen
    assert [read_index(f.image) for f in frames] == chosen
    assert all(f.key_frame for f in frames)
    assert sampler.stats.decoded == 3 and sampler.stats.key_frames == len(keys)

    every = list(sample_frames(clips["mp4"], n=1000, mode="keyframes"))
    assert _indices(every) == keys


def test_keyframes_mode_on_variable_frame_rate_gives_presentation_index(clips):
    frames = list(sample_frames(clips["vfr"], n=100, mode="keyframes"))
    assert frames and all(read_index(f.image) == f.index for f in frames)


def test_plan_uniform_matches_sampling_without_decoding(clips):
    indices, info = plan_uniform(clips["mkv"], 6)
    assert indices.tolist() == np.linspace(0, 44, 6, dtype=int).tolist()
    assert (info.width, info.height, info.frame_count) == (64, 48, None)


def test_limits_stop_big_or_long_videos(clips):
    with pytest.raises(MediaLimitError, match="max_pixels"):
        list(sample_frames(clips["mp4"], limits=Limits(max_pixels=1000)))
    with pytest.raises(MediaLimitError, match="max_video_seconds"):
        list(sample_frames(clips["mp4"], limits=Limits(max_video_seconds=1.0)))
    with pytest.raises(MediaLimitError, match="keyframes"):
        list(sample_frames(clips["mp4"], limits=Limits(max_decoded_frames=30)))
    # keyframes mode decodes few frames, so the same frame budget is fine there
    assert list(sample_frames(clips["mp4"], n=2, mode="keyframes", limits=Limits(max_decoded_frames=30)))
    with pytest.raises(MediaTimeoutError):
        list(sample_frames(clips["mp4"], limits=Limits(timeout_s=1e-9)))


def test_time_spent_by_the_consumer_is_not_charged_to_decoding(clips):
    import time

    sampler = sample_frames(clips["mp4"], n=3, limits=Limits(timeout_s=5.0))
    for _ in sampler:
        time.sleep(0.05)
    assert sampler.stats.decode_seconds < 0.15 + 1.0  # the sleeps (0.15 s) are not counted


def test_bad_arguments_fail_at_once(clips):
    with pytest.raises(ValueError):
        sample_frames(clips["mp4"], n=0)
    with pytest.raises(ValueError):
        sample_frames(clips["mp4"], mode="random")
    with pytest.raises(ValueError):
        Limits(max_pixels=0)
    with pytest.raises(TypeError):
        Limits(timeout_s="10")
