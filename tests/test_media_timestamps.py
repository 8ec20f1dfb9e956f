"""Frame indices and times on awkward timestamps (B-frames, negative starts, edit lists), and
the frame-size check from the header before anything is decoded. Clips are written here."""

import struct
import subprocess
import sys
import textwrap
from fractions import Fraction
from types import SimpleNamespace

import av
import pytest

from pycrl.limits import Limits
from pycrl.media import MediaLimitError, probe_video, sample_frames
from pycrl.media import video as video_module
from pycrl.media._decode import Clock, PresentationIndex
from pycrl.media.synthetic import pick_codec, read_index, remux_with_start_offset, write_video
from pycrl.media.video import plan_uniform

CODEC = pick_codec()
RATE = 25


def _write(path, frames=30, *, first_pts=0, bframes=2, gop=10, options=None):
    """Index frames 0..frames-1 with pts starting at ``first_pts`` (may be negative), B-frames on."""
    return write_video(path, frames, codec=CODEC, rate=RATE, gop=gop, first_pts=first_pts,
                       options={"bf": str(bframes)}, container_options=options)


def _packets(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe, p.is_discard) for p in c.demux(s) if p.size]


def _key_frames(path):
    """Presentation indices of the key frames, from a full decode (the ground truth)."""
    with av.open(path) as c:
        return [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]


def _check(frames, *, hidden=0, cfr=True):
    """The frames are the true ones, in order, and their times never go backwards.

    ``hidden``: frames an edit list cuts from the start; indices count shown frames only.
    """
    assert frames
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert [read_index(f.image) - hidden for f in frames] == indices
    times = [f.time for f in frames]
    assert times[0] >= 0.0 and all(b >= a for a, b in zip(times, times[1:]))
    if cfr:
        assert times == pytest.approx([i / RATE for i in indices], abs=1e-3)


@pytest.mark.parametrize("ext", ["mp4", "mkv", "ts", "avi"])
def test_b_frames_give_true_indices_and_monotonic_times(tmp_path, ext):
    path = _write(tmp_path / f"b.{ext}", 30)
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.has_b_frames  # the clip does reorder frames
    pts = [p[0] for p in _packets(path)]
    if ext != "avi":  # real pts come out of order in demux order; AVI has none to reorder
        assert any(b < a for a, b in zip(pts, pts[1:]))
    for n in (30, 7):
        _check(list(sample_frames(path, n=n)))
    every = list(sample_frames(path, n=30))
    assert [f.index for f in every] == list(range(30))
    keys = list(sample_frames(path, n=10, mode="keyframes"))
    _check(keys)
    assert [f.index for f in keys] == _key_frames(path)


@pytest.mark.parametrize("ext", ["ts", "mkv", "mp4"])
def test_negative_start_timestamps_give_times_from_zero(tmp_path, ext):
    """Frames stamped from -12/25 s: TS and Matroska keep the negative pts; MP4 gets an edit list
    that starts the presentation at pts 0, hiding the first 12 frames."""
    path = _write(tmp_path / f"neg.{ext}", 30, first_pts=-12, options={"avoid_negative_ts": "disabled"})
    if ext == "ts":
        with av.open(path) as c:
            assert c.streams.video[0].start_time < 0
    hidden = 12 if ext == "mp4" else 0
    for mode in ("uniform", "keyframes"):
        frames = list(sample_frames(path, n=30, mode=mode))
        _check(frames, hidden=hidden, cfr=mode == "uniform")
        if mode == "uniform":
            assert frames[0].index == 0 and frames[0].time == 0.0
            assert len(frames) == 30 - hidden


def test_keyframes_on_an_mp4_with_an_edit_list(tmp_path):
    src = _write(tmp_path / "src.mp4", 40, gop=10)
    path = remux_with_start_offset(src, str(tmp_path / "cut.mp4"), 12)
    assert b"elst" in open(path, "rb").read()
    packets = _packets(path)
    assert any(p[3] for p in packets)  # frames before the start are kept, flagged discard
    assert packets[0][2] and packets[0][3]  # beginning with a key frame the edit list cuts

    sampler = sample_frames(path, n=40)
    uniform = list(sampler)
    _check(uniform, hidden=12)
    assert len(uniform) == 28 and sampler.stats.incomplete is None  # the 28 shown frames, all planned

    shown = [k for k in _key_frames(src) if k >= 12]
    assert len(shown) >= 2
    keys = list(sample_frames(path, n=10, mode="keyframes"))
    _check(keys, hidden=12)
    assert [read_index(f.image) for f in keys] == shown  # the key frames that are shown


def test_keyframes_when_the_edit_list_cuts_every_key_frame(tmp_path):
    src = _write(tmp_path / "src.mp4", 20, gop=100)  # one key frame, at the start
    assert _key_frames(src) == [0]
    path = remux_with_start_offset(src, str(tmp_path / "cut.mp4"), 5)
    assert [p[3] for p in _packets(path) if p[2]] == [True]
    keys = list(sample_frames(path, n=4, mode="keyframes"))  # the cut key frame, decoded anyway
    assert [read_index(f.image) for f in keys] == [0] and keys[0].index == 0 and keys[0].time == 0.0
    _check(list(sample_frames(path, n=20)), hidden=5)


def _frame(pts, tb=Fraction(1, RATE)):
    return SimpleNamespace(pts=pts, time_base=tb)


def _stream(start=0, rate=RATE, b_frames=False):
    return SimpleNamespace(start_time=start, average_rate=rate, guessed_rate=None,
                           codec_context=SimpleNamespace(has_b_frames=b_frames))


def test_clock_never_goes_backwards():
    clock = Clock(_stream(start=0))
    pts = [-3, -1, 0, 2, 1, 5, None, 7, 6]
    times = [clock.seconds(_frame(p), i) for i, p in enumerate(pts)]
    assert times[0] == 0.0 and all(b >= a for a, b in zip(times, times[1:]))
    assert times[3] == pytest.approx(2 / RATE) and times[-2] == pytest.approx(7 / RATE)
    unknown_start = Clock(_stream(start=None))
    assert unknown_start.seconds(_frame(-50), 0) == 0.0


def test_presentation_index_stops_trusting_pts_that_step_back():
    order = PresentationIndex(_stream(b_frames=False))
    for p in range(6):
        order.packet(p)
    got = [order.frame(p) for p in (0, 1, 3, 2, 4, 5)]  # output order broken at 3 -> 2
    assert got == sorted(set(got)) and got[:2] == [0, 1]
    assert not order.pts_ok  # times now come from counting


def test_made_up_pts_on_a_reordering_stream_are_not_trusted():
    order = PresentationIndex(_stream(b_frames=True))
    for p in range(1, 7):  # monotonic in decode order although the decoder reorders: made up
        order.packet(p)
    assert [order.frame(p) for p in (1, 3, 2, 4, 5, 6)] == [0, 1, 2, 3, 4, 5]
    assert not order.pts_ok


# -- frame size refused from the header --------------------------------------------------------

def _count_decoding(monkeypatch):
    calls = []
    real = video_module.decoded_frames

    def counting(*args, **kwargs):
        calls.append(1)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(video_module, "decoded_frames", counting)
    return calls


def _forge_avi_mjpeg(tmp_path, width, height) -> str:
    """A real 64x48 MJPEG AVI whose headers (AVI and every JPEG) declare ``width`` x ``height``."""
    small = write_video(tmp_path / "small.avi", 3, codec="mjpeg", pix_fmt="yuvj420p")
    data = bytearray(open(small, "rb").read())
    strf = data.index(b"strf") + 8  # BITMAPINFOHEADER: size, width, height
    assert struct.unpack_from("<I", data, strf)[0] == 40
    struct.pack_into("<ii", data, strf + 4, width, height)
    avih = data.index(b"avih") + 8  # MainAVIHeader: dwWidth, dwHeight at 32, 36
    struct.pack_into("<II", data, avih + 32, width, height)
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 48, 64)  # SOF0: height, width
    assert data.count(sof) == 3
    data = data.replace(sof, sof[:5] + struct.pack(">HH", height, width))
    path = tmp_path / f"forged_{width}x{height}.avi"
    path.write_bytes(bytes(data))
    return str(path)


def test_a_huge_declared_frame_size_is_refused_before_decoding(tmp_path, monkeypatch):
    try:
        path = _forge_avi_mjpeg(tmp_path, 16_000, 16_000)
    except (av.FFmpegError, ValueError) as exc:
        pytest.skip(f"no MJPEG encoder here: {exc}")
    calls = _count_decoding(monkeypatch)
    for run in (lambda: list(sample_frames(path)), lambda: list(sample_frames(path, mode="keyframes")),
                lambda: probe_video(path), lambda: plan_uniform(path)):
        with pytest.raises(MediaLimitError, match="16000x16000"):
            run()
    assert calls == []


RSS_SCRIPT = textwrap.dedent("""
    import resource, sys
    import av.logging
    from pycrl.media import MediaError, sample_frames
    av.logging.set_level(av.logging.ERROR)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with av.logging.Capture() as logs:
        try:
            list(sample_frames(sys.argv[1]))
            print("DECODED")
        except MediaError as exc:
            print(type(exc).__name__)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    for _, _, message in logs:
        print(message.strip())
""")


def test_a_huge_declared_frame_is_never_allocated(tmp_path):
    """FFmpeg's stream probing decodes a frame before pycrl sees the header: the decoders it
    runs get Limits.max_pixels, so the 16000x16000 picture (384 MB) is refused before allocation."""
    try:
        path = _forge_avi_mjpeg(tmp_path, 16_000, 16_000)
    except (av.FFmpegError, ValueError) as exc:
        pytest.skip(f"no MJPEG encoder here: {exc}")
    run = subprocess.run([sys.executable, "-c", RSS_SCRIPT, path], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    kind, grown_mb, *log = run.stdout.splitlines()
    assert kind == "MediaLimitError"
    assert int(grown_mb) < 150, f"peak memory grew by {grown_mb} MB"
    # FFmpeg's own probing decoder met the limit (it would otherwise go on to allocate the picture)
    assert any("16000x16000 exceeds specified max pixel count 40000000" in line for line in log), log


def test_a_frame_size_over_the_limit_decodes_nothing(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", 20, codec=CODEC)
    calls = _count_decoding(monkeypatch)
    small = Limits(max_pixels=1_000)
    for mode in ("uniform", "keyframes"):
        sampler = sample_frames(path, mode=mode, limits=small)
        with pytest.raises(MediaLimitError, match="max_pixels"):
            list(sampler)
        assert sampler.stats.decoded == 0
    with pytest.raises(MediaLimitError, match="max_pixels"):
        probe_video(path, limits=small)
    assert calls == []
    assert len(list(sample_frames(path, n=2, limits=Limits(max_pixels=64 * 48)))) == 2  # the edge is allowed
