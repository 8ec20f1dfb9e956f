"""A corpus of hostile or broken inputs, built here: each gives its typed error or a right answer, fast."""

import io
import struct
import time
import zlib

import av
import numpy as np
import pytest
from PIL import Image

from pycrl.limits import Limits
from pycrl.media import (
    CorruptMediaError,
    MediaError,
    MediaLimitError,
    MediaNotFoundError,
    NoVideoStreamError,
    UnsupportedMediaError,
    load_image,
    media_kind,
    sample_frames,
)
from pycrl.media.synthetic import index_frame, pick_codec, read_index, write_audio, write_video

HANG_GUARD_S = 20.0  # generous: only catches a hang, not slowness
CODEC = pick_codec()


def _timed(fn, *args, **kwargs):
    start = time.monotonic()
    try:
        return fn(*args, **kwargs)
    finally:
        assert time.monotonic() - start < HANG_GUARD_S


def _frames(source, **kwargs):
    return _timed(lambda: list(sample_frames(source, **kwargs)))


def _png(width, height, idat=None, color_type=0) -> bytes:
    """A PNG whose header declares any size; the pixel data may be anything."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    pixels = idat or zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _zero_rows_png(width, height) -> bytes:
    """A real grey PNG of zeros: tiny on disk, ``width * height`` bytes once decoded."""
    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    parts = [comp.compress(row * 256) for _ in range(height // 256)]
    parts += [comp.compress(row * (height % 256)), comp.flush()]
    return _png(width, height, idat=b"".join(parts))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    files = {}

    def put(name, data):
        (d / name).write_bytes(data)
        files[name] = d / name

    put("zero.mp4", b"")
    put("random.mp4", np.random.default_rng(1).bytes(20_000))
    put("random.jpg", np.random.default_rng(2).bytes(5_000))
    put("text.jpg", b"this is not a picture\n" * 10)
    buf = io.BytesIO()
    Image.fromarray(index_frame(7)).save(buf, "PNG")
    put("image.mp4", buf.getvalue())
    put("huge_header.png", _png(100_000, 100_000))
    put("bomb.png", _zero_rows_png(8_000, 8_000))  # 64 M pixels > 40 M default
    put("truncated.png", buf.getvalue()[: len(buf.getvalue()) // 2])
    write_audio(d / "audio.m4a")
    write_audio(d / "audio.wav", codec="pcm_s16le")
    write_video(d / "one_frame.mp4", 1, codec=CODEC)
    write_video(d / "tiny.mp4", 4, width=2, height=2, codec=CODEC)
    write_video(d / "clip.mp4", 40, codec=CODEC, gop=10)  # moov at the end
    with av.open(str(d / "faststart.mp4"), "w", options={"movflags": "faststart"}) as c:  # moov first
        s = c.add_stream(CODEC, rate=25)
        s.width, s.height, s.codec_context.gop_size = 64, 48, 10
        for i in range(40):
            c.mux(s.encode(av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")))
        c.mux(s.encode())
    for name in ("audio.m4a", "audio.wav", "one_frame.mp4", "tiny.mp4", "clip.mp4", "faststart.mp4"):
        files[name] = d / name
    return files


@pytest.mark.parametrize(
    "name,error",
    [
        ("zero.mp4", CorruptMediaError),
        ("random.mp4", UnsupportedMediaError),
        ("audio.m4a", NoVideoStreamError),
        ("audio.wav", NoVideoStreamError),
        ("image.mp4", UnsupportedMediaError),  # a PNG named .mp4: route it to load_image
        ("huge_header.png", UnsupportedMediaError),
    ],
)
def test_video_decoder_refuses_with_a_typed_error(corpus, name, error):
    with pytest.raises(error) as info:
        _frames(corpus[name])
    assert str(corpus[name]) in str(info.value)  # the message names the file


@pytest.mark.parametrize(
    "name,error",
    [
        ("zero.mp4", CorruptMediaError),
        ("random.jpg", UnsupportedMediaError),
        ("text.jpg", UnsupportedMediaError),
        ("clip.mp4", UnsupportedMediaError),
        ("huge_header.png", MediaLimitError),
        ("bomb.png", MediaLimitError),
        ("truncated.png", CorruptMediaError),
    ],
)
def test_image_decoder_refuses_with_a_typed_error(corpus, name, error):
    with pytest.raises(error) as info:
        _timed(load_image, corpus[name])
    assert str(corpus[name]) in str(info.value)


def test_missing_paths_and_directories(tmp_path):
    for target in (tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(MediaNotFoundError):
            _frames(target)
        with pytest.raises(FileNotFoundError):  # also the standard type
            load_image(target)


def test_empty_bytes():
    with pytest.raises(CorruptMediaError):
        _frames(b"")
    with pytest.raises(CorruptMediaError):
        load_image(b"")


@pytest.mark.parametrize("name", ["clip.mp4", "faststart.mp4"])
@pytest.mark.parametrize("fraction", [0.001, 0.02, 0.15, 0.5, 0.8, 0.97])
@pytest.mark.parametrize("mode", ["uniform", "keyframes"])
def test_truncated_mp4_gives_corrupt_error_or_true_frames(corpus, name, fraction, mode):
    data = corpus[name].read_bytes()
    cut = data[: max(1, int(len(data) * fraction))]
    try:
        frames = _frames(cut, n=8, mode=mode)
    except (CorruptMediaError, UnsupportedMediaError) as exc:
        # only a 1-byte stub carries no signature at all
        assert isinstance(exc, CorruptMediaError) or len(cut) < 8
        return
    assert frames, "a sampler either raises or yields frames"
    for f in frames:  # whatever comes back is the real frame at that index
        assert f.image.shape == (48, 64, 3) and read_index(f.image) == f.index


def test_truncated_faststart_mp4_reports_the_shortfall(corpus):
    data = corpus["faststart.mp4"].read_bytes()
    sampler = sample_frames(data[: int(len(data) * 0.9)], n=8)
    frames = _timed(list, sampler)
    assert 0 < len(frames) < 8 and sampler.stats.incomplete
    assert frames[-1].index < 39


def test_damaged_payload_still_decodes_every_planned_frame(corpus):
    data = bytearray(corpus["faststart.mp4"].read_bytes())
    start = data.index(b"mdat") + 1200  # inside the compressed frames, past the first key frame
    data[start : start + 40] = np.random.default_rng(3).bytes(40)
    frames = _frames(bytes(data), n=8)
    assert len(frames) == 8 and all(f.image.shape == (48, 64, 3) for f in frames)
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and indices[-1] == 39  # true positions despite dropped frames
    assert read_index(frames[0].image) == 0


def test_one_frame_video(corpus):
    for mode in ("uniform", "keyframes"):
        frames = _frames(corpus["one_frame.mp4"], n=32, mode=mode)
        assert [f.index for f in frames] == [0] and read_index(frames[0].image) == 0


def test_two_by_two_pixels(corpus):
    frames = _frames(corpus["tiny.mp4"], n=32)
    assert [f.image.shape for f in frames] == [(2, 2, 3)] * 4
    img = load_image(np.zeros((2, 2, 3), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    assert load_image(buf.getvalue()).shape == (2, 2, 3)


def test_image_named_mp4_is_an_image(corpus):
    assert media_kind(corpus["image.mp4"]) == "image"
    assert read_index(load_image(corpus["image.mp4"])) == 7


def test_limits_on_images(corpus):
    with pytest.raises(MediaLimitError, match="max_image_bytes"):
        load_image(corpus["clip.mp4"], limits=Limits(max_image_bytes=100))
    small = Limits(max_pixels=1_000)
    with pytest.raises(MediaLimitError, match="max_pixels"):
        load_image(np.zeros((100, 100, 3), np.uint8), limits=small)
    with pytest.raises(MediaLimitError, match="max_pixels"):
        load_image(corpus["image.mp4"], limits=small)
    # Pillow's hard bomb limit (2 x 89.5 M pixels) also surfaces as a MediaLimitError
    with pytest.raises(MediaLimitError):
        load_image(corpus["huge_header.png"], limits=Limits(max_pixels=10**11))


def test_every_failure_is_a_media_error(corpus):
    for path in corpus.values():
        for decode in (_frames, load_image):
            try:
                _timed(decode, path)
            except MediaError:
                pass
