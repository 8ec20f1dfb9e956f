"""Uniform sampling by seeking gives exactly the frames of decoding everything: same indices, same
pixels, same times, on B-frames, Matroska, MPEG-TS, variable frame rate, negative start times and
edit lists; streams it cannot vouch for are decoded straight through. Clips are written here."""

from fractions import Fraction

import av
import numpy as np
import pytest

from pycrl.limits import Limits
from pycrl.media import MediaLimitError, MediaTimeoutError, _seek, sample_frames
from pycrl.media.synthetic import index_frame, pick_codec, read_index, remux_with_start_offset, write_video
from pycrl.media.video import FrameSampler, uniform_indices

CODEC = pick_codec()
RATE = 25
FRAMES = 300  # index frames go up to 399


def _write(path, frames=FRAMES, *, first_pts=0, bframes=2, gop=10, options=None, fmt=None):
    """Index frames 0..frames-1, pts from ``first_pts`` (may be negative), B-frames on, a key frame
    every ``gop`` frames and no more (no scene-cut key frames)."""
    return write_video(path, frames, codec=CODEC, rate=RATE, gop=gop, first_pts=first_pts,
                       options={"bf": str(bframes), "sc_threshold": "0"}, container_format=fmt,
                       container_options=options)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("seek")
    src = _write(d / "src.mp4", gop=10)
    return {
        "mp4": src,
        "mp4_gop100": _write(d / "gop100.mp4", gop=100),
        "mkv": _write(d / "b.mkv"),
        "ts": _write(d / "b.ts"),
        "mkv_vfr": write_video(d / "vfr.mkv", FRAMES, codec=CODEC, gop=10, durations_ms=[60, 20, 40]),
        "mp4_vfr": write_video(d / "vfr.mp4", FRAMES, codec=CODEC, gop=10, durations_ms=[60, 20, 40]),
        "ts_negative": _write(d / "neg.ts", first_pts=-12, options={"avoid_negative_ts": "disabled"}),
        "mkv_negative": _write(d / "neg.mkv", first_pts=-12, options={"avoid_negative_ts": "disabled"}),
        "mp4_edit_list": remux_with_start_offset(src, str(d / "cut.mp4"), 12),
        "avi": _write(d / "b.avi"),
        "avi_no_b": _write(d / "nob.avi", bframes=0),  # pts one tick past the start time AVI declares
        "avi_mjpeg": write_video(d / "mjpeg.avi", FRAMES, codec="mjpeg", pix_fmt="yuvj420p"),  # all key frames
        "flv": _write(d / "b.flv"),
        "h264": _write(d / "raw.h264", fmt="h264"),
    }


HIDDEN = {"mp4_edit_list": 12}  # frames the edit list cuts from the presentation
SEEKS = ["mp4", "mp4_gop100", "mkv", "ts", "mkv_vfr", "ts_negative", "mp4_edit_list", "avi_mjpeg", "flv"]
# variable rate with the container's count; AVI's made-up pts with B-frames, or off its declared start;
# no pts in a raw stream; the Matroska muxer drops negative pts
SEQUENTIAL = ["mp4_vfr", "avi", "avi_no_b", "h264", "mkv_negative"]


def _compare(path, n, hidden=0, limits=None):
    """Sample by seeking and by decoding everything; they must agree frame for frame."""
    seeking = FrameSampler(path, n=n, limits=limits)
    reference = FrameSampler(path, n=n, limits=limits, _seek=False)
    got, want = list(seeking), list(reference)
    assert [f.index for f in got] == [f.index for f in want]
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a.image, b.image), a.index
        assert a.key_frame == b.key_frame
        assert read_index(a.image) - hidden == a.index
    assert [f.time for f in got] == pytest.approx([f.time for f in want], abs=1e-6)
    assert seeking.stats.planned == reference.stats.planned
    assert seeking.stats.incomplete == reference.stats.incomplete
    return seeking.stats, reference.stats, got


@pytest.mark.parametrize("name", SEEKS)
@pytest.mark.parametrize("n", [8, 5, 32])
def test_seeking_gives_the_frames_of_decoding_everything(clips, name, n):
    stats, ref, frames = _compare(clips[name], n, HIDDEN.get(name, 0))
    total = FRAMES - HIDDEN.get(name, 0)
    assert [f.index for f in frames] == uniform_indices(total, n).tolist()  # the protocol's indices
    assert ref.decoded >= total - 2
    if n == 32:  # 9-frame gaps: decoding on is cheaper than any seek
        assert stats.seeks == 0 and "close together" in stats.sequential
    else:
        assert stats.sequential is None and stats.seeks > 0, stats.sequential
        assert stats.decoded < ref.decoded * (0.95 if name == "mp4_gop100" else 0.5)  # the point of it


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_streams_without_exact_positions_are_decoded_straight_through(clips, name):
    stats, _, frames = _compare(clips[name], 8)
    assert stats.seeks == 0 and stats.sequential
    assert [f.index for f in frames] == uniform_indices(FRAMES, 8).tolist()


def test_variable_frame_rate_mp4_is_decoded_straight_through(clips):
    sampler = sample_frames(clips["mp4_vfr"], n=8)
    list(sampler)
    assert sampler.stats.seeks == 0 and "frame rate" in sampler.stats.sequential


def test_threaded_decoding_after_seeks_matches_a_plain_single_threaded_decode(clips):
    """Ground truth outside pycrl: every frame from a plain PyAV decode, no threads, in pts order."""
    for name in ("mp4", "mkv", "ts"):
        with av.open(clips[name]) as c:
            s = c.streams.video[0]
            s.codec_context.thread_count = 1
            plain = sorted(((f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(s)), key=lambda p: p[0])
        sampler = sample_frames(clips[name], n=7)
        frames = list(sampler)
        assert sampler.stats.seeks > 0
        assert len(plain) == FRAMES
        for f in frames:
            assert np.array_equal(f.image, plain[f.index][1]), (name, f.index)


def test_gop_longer_than_the_gaps_mixes_seeks_and_decoding_on(clips):
    stats, _, _ = _compare(clips["mp4_gop100"], 6)
    # targets 0, 59, 119, 179, 239, 299; key frames at 0, 100, 200: decode 0-59, seek to 100,
    # decode on to 179, seek to 200, decode on to 299 (240 frames, and what frame threads have in flight)
    assert stats.seeks == 2
    assert 240 <= stats.decoded < 260


def test_max_decoded_frames_counts_the_frames_actually_decoded(clips):
    path = clips["mp4"]
    sampler = sample_frames(path, n=4, limits=Limits(max_decoded_frames=60))
    frames = list(sampler)  # decoding everything (300 frames) would be refused
    assert len(frames) == 4 and sampler.stats.decoded <= 60 and sampler.stats.seeks > 0
    with pytest.raises(MediaLimitError, match="max_decoded_frames"):
        list(sample_frames(path, n=4, limits=Limits(max_decoded_frames=10)))
    with pytest.raises(MediaLimitError, match="keyframes"):  # straight through: refused up front as before
        list(FrameSampler(path, n=4, limits=Limits(max_decoded_frames=60), _seek=False))
    with pytest.raises(MediaTimeoutError):
        list(sample_frames(path, n=4, limits=Limits(timeout_s=1e-9)))


def test_a_frame_off_the_grid_hands_over_to_the_exact_path(clips, monkeypatch):
    """A surprise after some frames were given: the straight path goes on after them, same frames."""
    path = clips["mp4"]
    targets = uniform_indices(FRAMES, 8).tolist()
    grid_index = _seek.GridMap.index
    liar_pts = {}

    def index(self, pts):
        found = grid_index(self, pts)
        if found == targets[5] - 1:
            liar_pts["hit"] = pts
            return None  # as if this frame's pts were off the frame-rate grid
        return found

    monkeypatch.setattr(_seek.GridMap, "index", index)
    stats, ref, _ = _compare(path, 8)
    assert liar_pts and stats.seeks >= 1 and "straight through" in stats.sequential
    assert "not a frame position" in stats.sequential


def test_a_failed_seek_hands_over_to_the_exact_path(clips, monkeypatch):
    real = _seek.find_key
    calls = []

    def failing(container, stream, fmap, target, deadline, want=None):
        if want is not None:
            calls.append(target)
            if len(calls) == 3:
                return None
        return real(container, stream, fmap, target, deadline, want)

    monkeypatch.setattr(_seek, "find_key", failing)
    stats, _, _ = _compare(clips["ts"], 8)
    assert len(calls) == 3 and "seeking to the key frame before" in stats.sequential


def test_a_truncated_long_clip_ends_like_decoding_everything(tmp_path):
    with av.open(str(tmp_path / "full.mp4"), "w", options={"movflags": "faststart"}) as c:  # header first
        s = c.add_stream(CODEC, rate=RATE)
        s.width, s.height, s.codec_context.gop_size = 64, 48, 10
        for i in range(FRAMES):
            c.mux(s.encode(av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")))
        c.mux(s.encode())
    data = (tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    stats, ref, frames = _compare(str(cut), 8)
    assert stats.incomplete and ref.incomplete and frames[-1].index < FRAMES - 1
    assert "straight through" in stats.sequential


def test_frame_maps():
    grid = _seek.GridMap(start=-1024, step=Fraction(512), total=10)
    assert [grid.index(-1024 + 512 * k) for k in range(10)] == list(range(10))
    assert grid.index(-1024 + 256) is None and grid.index(-1024 + 512 * 10) is None and grid.index(-2048) is None
    assert grid.pts(3) == -1024 + 3 * 512
    ntsc = _seek.GridMap(start=0, step=Fraction(1001, 30), total=100)  # 29.97 fps in milliseconds
    assert [ntsc.index(round(k * 1001 / 30)) for k in range(100)] == list(range(100))
    scan = _seek.ScanMap([0, 40, 60, 100])
    assert [scan.index(p) for p in (0, 40, 60, 100, 50, 120)] == [0, 1, 2, 3, None, None]
    assert scan.pts(2) == 60


def test_dense_targets_and_plan_costs():
    assert _seek.dense([0, 8, 16, 25]) and not _seek.dense([0, 8, 40])
    key = _seek.KeyPoint
    keys = [key(0, 0, 0), key(0, 0, 0), key(100, 0, 0), key(100, 0, 0), key(200, 0, 0)]
    seeks, work = _seek.seeks_worth_it([0, 42, 128, 170, 213], keys)
    assert seeks == 2 and work == 43 + 29 + 42 + 14
