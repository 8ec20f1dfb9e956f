"""Media is read as a local file only: names are never URLs, demuxers never open anything else,
and the time budget bounds every open and read. Fixtures are written here (clips, playlists,
concat scripts, a TCP listener, a FIFO)."""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import av
import numpy as np
import pytest
from PIL import Image

from pycrl.limits import PLAIN_DEMUXERS, Limits
from pycrl.media import (
    MediaError,
    MediaNotFoundError,
    MediaTimeoutError,
    UnsupportedMediaError,
    _container,
    load_image,
    media_kind,
    probe_video,
    sample_frames,
)
from pycrl.media.inputs import expand_inputs
from pycrl.media.synthetic import index_frame, pick_codec, read_index, write_video
from pycrl.pipeline.decode import MediaDecoder

CODEC = pick_codec()
FAST = 10.0  # seconds: a refusal is immediate; this only catches a hang


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1; ``accepted()`` says whether anything connected."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)

    class Listener:
        port = sock.getsockname()[1]

        @staticmethod
        def accepted() -> bool:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                return False
            conn.close()
            return True

    yield Listener
    sock.close()


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory):
    """A real video in another folder, which no input may make pycrl read."""
    d = tmp_path_factory.mktemp("elsewhere")
    return {
        "mp4": write_video(d / "secret.mp4", 10, codec=CODEC),
        "ts": write_video(d / "secret.ts", 10, codec=CODEC),
    }


def _decode_all(source, limits=None):
    """Every way pycrl decodes an input; each must finish, with frames or a MediaError."""
    results = []
    for run in (
        lambda: list(sample_frames(source, n=4, limits=limits)),
        lambda: list(sample_frames(source, n=4, mode="keyframes", limits=limits)),
        lambda: probe_video(source, limits=limits),
        lambda: list(MediaDecoder(frames=4, sampling="uniform", limits=limits or Limits())(source)),
    ):
        start = time.monotonic()
        try:
            results.append(run())
        except MediaError as exc:
            results.append(exc)
        assert time.monotonic() - start < FAST
    return results


# -- names that look like URLs -------------------------------------------------------------

def test_url_like_file_names_are_local_files(tmp_path, monkeypatch, listener):
    monkeypatch.chdir(tmp_path)  # a folder walk of "." gives bare names: "tcp:...", not "./tcp:..."
    port = listener.port
    clip = write_video(tmp_path / "clip.mp4", 12, codec=CODEC)
    for name in (f"tcp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}.mp4", f"http:127.0.0.1:{port}.mp4"):
        shutil.copy(clip, tmp_path / name)
    os.remove(clip)
    found, _ = expand_inputs(["."])
    assert f"tcp:127.0.0.1:{port}.mp4" in found and f"http:127.0.0.1:{port}.mp4" in found
    for name in (f"tcp:127.0.0.1:{port}", *found):
        assert not os.path.isabs(name)
        for result in _decode_all(name):  # the local clip, whatever the name says
            assert not isinstance(result, Exception), result
        frames = list(sample_frames(name, n=3))
        assert [read_index(f.image) for f in frames] == [f.index for f in frames] == [0, 5, 11]
    assert not listener.accepted()


def test_url_like_names_that_do_not_exist_are_missing_files(tmp_path, monkeypatch, listener):
    monkeypatch.chdir(tmp_path)
    for name in (f"tcp:127.0.0.1:{listener.port}", f"http://127.0.0.1:{listener.port}/clip.mp4",
                 f"rtsp://127.0.0.1:{listener.port}/live", "concat:a.mp4|b.mp4"):
        for result in _decode_all(name):
            assert isinstance(result, MediaNotFoundError), result
        with pytest.raises(MediaNotFoundError):
            load_image(name)
        with pytest.raises(MediaNotFoundError):
            media_kind(name)
    assert not listener.accepted()


def test_images_with_url_like_names_are_read_locally(tmp_path, monkeypatch, listener):
    monkeypatch.chdir(tmp_path)
    name = f"http:127.0.0.1:{listener.port}.png"
    Image.fromarray(index_frame(9)).save(tmp_path / name, "PNG")
    assert media_kind(name) == "image"
    assert read_index(load_image(name)) == 9
    assert not listener.accepted()


# -- inputs that name other files or addresses inside them --------------------------------

def _hls(segment: str, live: bool = False, target: int = 2) -> str:
    end = "" if live else "#EXT-X-ENDLIST\n"
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:{target}\n#EXTINF:{target},\n{segment}\n{end}"


def _refused(result, demuxer: str) -> bool:
    return isinstance(result, UnsupportedMediaError) and demuxer in str(result)


def test_hls_playlists_are_refused_at_open(tmp_path, listener, elsewhere):
    inputs = {
        "live_http.m3u8": _hls(f"http://127.0.0.1:{listener.port}/seg.ts", live=True),
        "vod_http.m3u8": _hls(f"http://127.0.0.1:{listener.port}/seg.ts"),
        "vod_file.m3u8": _hls(elsewhere["ts"]),
        "vod_file_url.m3u8": _hls("file://" + elsewhere["ts"]),
    }
    for name, text in inputs.items():
        (tmp_path / name).write_text(text)
        for result in _decode_all(tmp_path / name):
            assert _refused(result, "hls"), (name, result)
    assert not listener.accepted()


def test_concat_scripts_are_refused_whatever_their_name(tmp_path, monkeypatch, elsewhere):
    script = f"ffconcat version 1.0\nfile {elsewhere['mp4']}\n"
    (tmp_path / "clip.mp4").write_text(script)  # disguised as MP4
    for result in _decode_all(tmp_path / "clip.mp4"):
        assert _refused(result, "concat"), result
    # bytes in memory naming a file in the working directory
    shutil.copy(elsewhere["mp4"], tmp_path / "neighbour.mp4")
    monkeypatch.chdir(tmp_path)
    for result in _decode_all(b"ffconcat version 1.0\nfile neighbour.mp4\n"):
        assert _refused(result, "concat"), result


def test_other_reference_formats_are_refused(tmp_path, listener):
    cases = {
        "session.sdp": ("sdp", f"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                               f"m=video {listener.port} RTP/AVP 96\na=rtpmap:96 H264/90000\n"),
        "manifest.mpd": ("dash", '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" '
                                 'type="static"><Period><AdaptationSet><Representation id="1" bandwidth="1">'
                                 f'<BaseURL>http://127.0.0.1:{listener.port}/v.mp4</BaseURL>'
                                 "</Representation></AdaptationSet></Period></MPD>\n"),
    }
    for name, (demuxer, text) in cases.items():
        (tmp_path / name).write_text(text)
        for result in _decode_all(tmp_path / name):
            assert isinstance(result, UnsupportedMediaError), (name, result)
            if demuxer in _av_demuxers():  # this FFmpeg has it: the refusal names it
                assert demuxer in str(result), (name, result)
    assert not listener.accepted()


def _av_demuxers():
    return {n for name in av.formats_available for n in name.split(",") if av.format.ContainerFormat(name).is_input}


def test_image_sequences_by_name_are_refused(tmp_path):
    for i in range(1, 4):
        Image.fromarray(index_frame(i)).save(tmp_path / f"frame{i:03d}.jpg", "JPEG")
    pattern = tmp_path / "frame%03d.jpg"  # image2 would read frame001.jpg, frame002.jpg, ...
    pattern.write_bytes((tmp_path / "frame001.jpg").read_bytes())
    *video, decoded = _decode_all(pattern)
    for result in video:
        assert isinstance(result, UnsupportedMediaError) and "load_image" in str(result), result
    assert len(decoded) == 1 and read_index(decoded[0].image) == 1  # the decode stage: the one file, as an image


def test_allowing_a_reference_demuxer_still_opens_nothing_else(tmp_path, listener, elsewhere):
    """``allowed_demuxers`` widens which demuxers parse an input, never what they may open."""
    wide = Limits(timeout_s=5, allowed_demuxers=(*PLAIN_DEMUXERS, "hls", "concat"))
    (tmp_path / "http.m3u8").write_text(_hls(f"http://127.0.0.1:{listener.port}/seg.ts"))
    (tmp_path / "file.m3u8").write_text(_hls(elsewhere["ts"]))
    (tmp_path / "cat.mp4").write_text(f"ffconcat version 1.0\nfile {elsewhere['mp4']}\n")
    for name in ("http.m3u8", "file.m3u8", "cat.mp4"):
        for result in _decode_all(tmp_path / name, limits=wide):
            assert isinstance(result, MediaError), (name, result)  # nothing decoded from elsewhere
    assert not listener.accepted()


def test_allowed_demuxers_setting_is_checked():
    assert Limits(allowed_demuxers=["mov", "matroska"]).allowed_demuxers == ("mov", "matroska")
    for bad in ((), ("mov,hls",), ("",), ("HLS",)):
        with pytest.raises(ValueError):
            Limits(allowed_demuxers=bad)
    with pytest.raises(TypeError):
        Limits(allowed_demuxers="mov")
    assert Limits(**{**Limits().__dict__, "allowed_demuxers": list(PLAIN_DEMUXERS)}) == Limits()


def test_a_video_outside_the_allow_list_is_refused_naming_its_demuxer(tmp_path):
    path = write_video(tmp_path / "clip.mkv", 5, codec=CODEC)
    with pytest.raises(UnsupportedMediaError, match="matroska"):
        list(sample_frames(path, limits=Limits(allowed_demuxers=("mov",))))
    assert len(list(sample_frames(path, n=2, limits=Limits(allowed_demuxers=("matroska",))))) == 2


def test_legitimate_containers_still_decode(tmp_path):
    written = 0
    for ext in ("mp4", "mkv", "avi", "ts", "flv", "mov", "webm"):
        codec = "libvpx-vp9" if ext == "webm" else CODEC
        try:
            path = write_video(tmp_path / f"clip.{ext}", 12, codec=codec)
        except (av.FFmpegError, ValueError, RuntimeError):  # an encoder or muxer this PyAV build lacks
            continue
        written += 1
        frames = list(sample_frames(path, n=3))
        assert [read_index(f.image) for f in frames] == [f.index for f in frames] == [0, 5, 11], ext
        with open(path, "rb") as fh:
            assert [f.index for f in sample_frames(fh.read(), n=3)] == [0, 5, 11], ext
    assert written >= 5


STRACE_SCRIPT = textwrap.dedent("""
    import sys
    from pycrl.limits import PLAIN_DEMUXERS, Limits
    from pycrl.media import MediaError, sample_frames
    wide = Limits(timeout_s=5, allowed_demuxers=(*PLAIN_DEMUXERS, "hls", "concat"))
    for path in sys.argv[1:]:
        for limits in (None, wide):
            try:
                list(sample_frames(path, limits=limits))
                print("DECODED", path)
            except MediaError as exc:
                print("refused", type(exc).__name__)
""")


def test_no_other_file_is_opened_strace(tmp_path, listener, elsewhere):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    probe = subprocess.run([strace, "-f", "-e", "trace=openat", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()[:200]}")
    (tmp_path / "file.m3u8").write_text(_hls(elsewhere["ts"]))
    (tmp_path / "http.m3u8").write_text(_hls(f"http://127.0.0.1:{listener.port}/seg.ts"))
    (tmp_path / "cat.mp4").write_text(f"ffconcat version 1.0\nfile {elsewhere['mp4']}\n")
    log = tmp_path / "strace.log"
    inputs = [str(tmp_path / n) for n in ("file.m3u8", "http.m3u8", "cat.mp4")]
    run = subprocess.run(
        [strace, "-f", "-e", "trace=open,openat,openat2,connect", "-o", str(log),
         sys.executable, "-c", STRACE_SCRIPT, *inputs],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DECODED" not in run.stdout and run.stdout.count("refused") == 6
    trace = log.read_text()
    assert all(path in trace for path in inputs)  # the trace does see what is opened
    secret_dir = os.path.dirname(elsewhere["mp4"])
    assert secret_dir not in trace  # neither video elsewhere, nor their folder
    assert f"sin_port=htons({listener.port})" not in trace
    assert not listener.accepted()


# -- no hang ---------------------------------------------------------------------------------

def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "upload.mp4"
    os.mkfifo(fifo)
    start = time.monotonic()
    for result in _decode_all(fifo):
        assert isinstance(result, MediaNotFoundError) and "regular" in str(result)
    for call in (load_image, media_kind):
        with pytest.raises(MediaNotFoundError):
            call(fifo)
    assert time.monotonic() - start < FAST


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The race: a regular file at stat time, a FIFO at open time (open_local re-checks the descriptor)."""
    from pycrl.media import _source

    fifo = tmp_path / "swapped.mp4"
    os.mkfifo(fifo)
    real_stat = os.stat
    regular = real_stat(__file__)
    monkeypatch.setattr(
        _source.os, "stat", lambda p, *a, **k: regular if os.fspath(p) == str(fifo) else real_stat(p, *a, **k)
    )
    start = time.monotonic()
    with pytest.raises(MediaNotFoundError, match="regular"):
        _source.open_local(fifo)
    assert time.monotonic() - start < FAST


def test_a_live_playlist_cannot_block_past_the_budget(tmp_path, listener):
    """Even with HLS allowed, the reload wait of a live playlist is cut by Limits.timeout_s."""
    (tmp_path / "live.m3u8").write_text(_hls(f"http://127.0.0.1:{listener.port}/seg.ts", live=True, target=600))
    limits = Limits(timeout_s=1.0, allowed_demuxers=(*PLAIN_DEMUXERS, "hls"))
    start = time.monotonic()
    with pytest.raises(MediaError):
        list(sample_frames(tmp_path / "live.m3u8", limits=limits))
    assert time.monotonic() - start < 1.0 + 3.0
    assert not listener.accepted()


class _SlowFile:
    """A source that trickles: small reads, each slow (a stalled network filesystem)."""

    def __init__(self, raw, delay):
        self._raw, self._delay = raw, delay

    def read(self, size=-1):
        time.sleep(self._delay)
        return self._raw.read(min(size, 512) if size and size > 0 else 512)

    def __getattr__(self, name):
        return getattr(self._raw, name)


def test_a_slow_source_cannot_block_past_the_budget(tmp_path, monkeypatch):
    noise = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8) for i in range(40)]
    path = write_video(tmp_path / "clip.mkv", noise, codec=CODEC)
    assert os.path.getsize(path) > 40 * 512  # at least 40 slow reads
    real = _container.open_local
    monkeypatch.setattr(_container, "open_local", lambda source: _SlowFile(real(source), 0.05))
    budget = 0.5
    for mode in ("uniform", "keyframes"):
        start = time.monotonic()
        with pytest.raises(MediaTimeoutError):
            list(sample_frames(path, n=40, mode=mode, limits=Limits(timeout_s=budget)))
        assert time.monotonic() - start < budget + 1.0  # the budget plus one slow read, with slack
    with pytest.raises(MediaTimeoutError):
        probe_video(path, limits=Limits(timeout_s=0.1))
