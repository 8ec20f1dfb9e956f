"""Still images: every common mode, orientation and container ends as RGB uint8 HWC."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pycrl.media import UnsupportedMediaError, load_image, media_kind


def _asym(w=40, h=20):
    """An RGB picture whose orientation is unambiguous: red left half, blue top-right quarter."""
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, : w // 2] = (220, 30, 30)
    img[: h // 2, w // 2 :] = (30, 30, 220)
    return img


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation,turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    path.write_bytes(_save(Image.fromarray(_asym()), "JPEG", quality=95, exif=exif))
    out = load_image(path)
    expected = np.rot90(_asym(), turn)  # orientation 6 = turn 90 degrees clockwise to display
    assert out.shape == expected.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).mean() < 6


def test_rgba_is_composited_on_black():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 128
    rgba[0, 0, 3] = 0
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[1, 1].tolist() == [100, 50, 25]
    assert out[0, 0].tolist() == [0, 0, 0]
    assert np.array_equal(load_image(rgba), out)  # arrays follow the same rule


def test_16_bit_png_keeps_the_high_byte(tmp_path):
    grey = np.full((6, 5), 40000, np.uint16)
    out = load_image(_save(Image.fromarray(grey), "PNG"))
    assert out.shape == (6, 5, 3) and (out == 40000 >> 8).all()
    rgb16 = np.zeros((6, 5, 3), np.uint16)
    rgb16[..., 0] = 65535  # cv2 writes BGR: this is blue
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16)
    out = load_image(tmp_path / "rgb16.png")
    assert out[0, 0].tolist() == [0, 0, 255]


def test_grey_and_bilevel_become_three_equal_channels():
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    out = load_image(_save(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (5, 6, 3) and all(np.array_equal(out[..., c], grey) for c in range(3))
    bilevel = Image.fromarray(grey > 100).convert("1")
    out = load_image(_save(bilevel, "PNG"))
    assert set(np.unique(out)) <= {0, 255} and out[..., 0].tolist() == ((grey > 100) * 255).tolist()


def test_cmyk_jpeg_converts_to_rgb():
    cmyk = Image.fromarray(_asym()).convert("CMYK")
    data = _save(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = load_image(data)
    assert out.shape == (20, 40, 3)
    assert np.abs(out.astype(int) - _asym()).mean() < 8


def test_palette_with_and_without_transparency():
    pal = Image.fromarray(_asym()).quantize(colors=4)
    out = load_image(_save(pal, "PNG"))
    assert np.abs(out.astype(int) - _asym()).mean() < 3
    pal.info["transparency"] = int(np.asarray(pal)[0, 0])  # the red index becomes transparent
    out = load_image(_save(pal, "PNG", transparency=pal.info["transparency"]))
    assert out[0, 0].tolist() == [0, 0, 0] and out[-1, -1].tolist() == [40, 40, 40]


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = load_image(data)
    assert out.shape == (8, 8, 3) and out[4, 4].tolist() == [255, 0, 0]


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "PPM"])
def test_other_containers(fmt):
    out = load_image(_save(Image.fromarray(_asym()), fmt))
    assert out.shape == (20, 40, 3) and np.abs(out.astype(int) - _asym()).mean() < 6


def test_arrays_of_every_supported_kind():
    base = _asym()
    assert load_image(base) is base  # already RGB uint8 and contiguous: no copy
    assert np.array_equal(load_image(base.astype(np.uint16) << 8), base)
    assert np.array_equal(load_image(base / 255.0), base)
    assert load_image(np.ones((3, 3), bool))[0, 0].tolist() == [255, 255, 255]
    assert load_image(base[..., :1]).shape == (20, 40, 3)
    with pytest.raises(UnsupportedMediaError):
        load_image(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(UnsupportedMediaError):
        load_image(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError):
        load_image(12345)


def test_path_and_bytes_agree(tmp_path):
    data = _save(Image.fromarray(_asym()), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    assert np.array_equal(load_image(tmp_path / "a.png"), load_image(data))
    assert np.array_equal(load_image(str(tmp_path / "a.png")), load_image(bytearray(data)))


def test_media_kind_routes_by_content(tmp_path):
    (tmp_path / "photo.mp4").write_bytes(_save(Image.fromarray(_asym()), "JPEG"))
    assert media_kind(tmp_path / "photo.mp4") == "image"
    (tmp_path / "noise.bin").write_bytes(np.random.default_rng(0).bytes(256))
    assert media_kind(tmp_path / "noise.bin") == "video"
