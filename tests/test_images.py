"""Robust image input: every format becomes 8-bit RGB; every bad file gets an error naming file and reason. Atomic
writes of model files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from maskface.errors import ImageError, safe_display
from maskface.face.robust import DETECTOR_FILE, weights_path
from maskface.io.files import atomic_save
from maskface.io.images import LIMITS, ImageLimits, decode_image, iter_image_files, load_image


def _save(img: Image.Image, path: Path, fmt: str, **kwargs) -> Path:
    img.save(path, format=fmt, **kwargs)
    return path


@pytest.fixture
def rgb() -> Image.Image:
    gradient = np.zeros((40, 60, 3), np.uint8)
    gradient[..., 0] = np.arange(60)[None, :] * 4
    gradient[..., 1] = np.arange(40)[:, None] * 6
    gradient[..., 2] = 90
    return Image.fromarray(gradient)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("WEBP", ".webp"), ("TIFF", ".tif"),
                                        ("PPM", ".ppm")])
def test_lossless_formats_round_trip_exactly(tmp_path, rgb, fmt, suffix):
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    path = _save(rgb, tmp_path / f"face{suffix}", fmt, **kwargs)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    np.testing.assert_array_equal(out, np.asarray(rgb))


def test_jpeg_and_file_without_extension(tmp_path, rgb):
    path = _save(rgb, tmp_path / "subject01.happy", "JPEG", quality=95)
    out = load_image(path)
    assert out.shape == (40, 60, 3)
    assert np.abs(out.astype(int) - np.asarray(rgb).astype(int)).mean() < 3


def test_greyscale_pgm_gif_and_palette_become_rgb(tmp_path, rgb):
    grey = rgb.convert("L")
    for path in (_save(grey, tmp_path / "g.pgm", "PPM"), _save(grey, tmp_path / "g.gif", "GIF")):
        out = load_image(path)
        assert out.shape == (40, 60, 3)
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
        np.testing.assert_array_equal(out[..., 0], np.asarray(grey))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = load_image(_save(palette, tmp_path / "p.png", "PNG"))
    np.testing.assert_array_equal(out, np.asarray(palette.convert("RGB")))


def test_sixteen_bit_greyscale_scales_to_eight_bits(tmp_path):
    values = np.tile(np.array([[0, 257 * 100, 65535]], dtype=np.uint16), (16, 6))  # 16 x 18 pixels
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    path = _save(image, tmp_path / "deep.png", "PNG")
    out = load_image(path)
    np.testing.assert_array_equal(out[0, :3, 0], [0, 100, 255])


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png", "PNG"))
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])


def test_cmyk_jpeg_becomes_rgb(tmp_path, rgb):
    out = load_image(_save(rgb.convert("CMYK"), tmp_path / "c.jpg", "JPEG", quality=98))
    assert out.shape == (40, 60, 3)
    assert np.abs(out.astype(int) - np.asarray(rgb).astype(int)).mean() < 4


def test_exif_orientation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = _save(rgb, tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes())
    out = load_image(path)
    assert out.shape == (60, 40, 3)  # width and height swapped


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"just some text, not an image\n", "not an image"),
    (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt"),
])
def test_bad_bytes_raise_specific_errors(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_refused(tmp_path, rgb):
    buffer = io.BytesIO()
    rgb.resize((300, 200)).save(buffer, format="JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_png_with_damaged_pixel_data_is_refused(tmp_path, rgb):
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 8
    data[start : start + 20] = bytes(20)  # zero part of the compressed stream
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt|truncated"):
        load_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = Image.new("1", (17000, 17000))  # 289 Mpx, a few kB as PNG
    path = _save(bomb, tmp_path / "bomb.png", "PNG")
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="too large"):
        load_image(path)


def test_decode_limit_is_configurable(rgb):
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    with pytest.raises(ImageError, match="too large"):
        decode_image(buffer.getvalue(), "small.png", ImageLimits(max_pixels=100))


def test_iter_image_files_walks_folders_and_keeps_named_files(tmp_path, rgb):
    (tmp_path / "a" / "b").mkdir(parents=True)
    _save(rgb, tmp_path / "a" / "b" / "x.png", "PNG")
    _save(rgb, tmp_path / "a" / "subject02.sad", "GIF")
    (tmp_path / "a" / "notes.txt").write_text("skip me")
    (tmp_path / "a" / "README").write_text("skip me too")
    found = iter_image_files([tmp_path / "a", tmp_path / "missing.jpg"])
    assert [str(r) for _, r in found] == ["b/x.png", "subject02.sad", "missing.jpg"]


def test_atomic_save_writes_whole_files_or_keeps_the_old_one(tmp_path):
    shipped = weights_path(DETECTOR_FILE)
    target = tmp_path / "detector.svm"
    target.write_bytes(b"old")
    atomic_save(target, dlib.simple_object_detector(str(shipped)).save)  # a library that only saves to a path
    assert target.read_bytes() == shipped.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not the temp file's private 0600

    def full_disk(path: str) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_save(target, full_disk)
    assert target.read_bytes() == shipped.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["detector.svm"]  # no temp file left behind


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_special_files_are_refused_by_stat_with_their_own_reason(tmp_path, rgb):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    (tmp_path / "dangling.jpg").symlink_to("gone.jpg")
    with open(tmp_path / "sparse.jpg", "wb") as handle:
        handle.truncate(2**33)
    reasons = {}
    for name in ("pipe.jpg", "zero.jpg", "loop.jpg", "dangling.jpg", "sparse.jpg"):
        with pytest.raises(ImageError) as info:
            load_image(tmp_path / name)
        reasons[name] = info.value.reason
    assert reasons == {
        "pipe.jpg": "is a FIFO (named pipe), not a regular file",
        "zero.jpg": "is a character device (a symlink to /dev/zero), not a regular file",
        "loop.jpg": "symlink loop: too many levels of symbolic links",
        "dangling.jpg": "dangling symlink: its target gone.jpg does not exist",
        "sparse.jpg": "file too large: 8 GiB exceeds the limit of 256 MiB",
    }


def test_pixel_limit_and_degenerate_sizes_are_checked_from_the_header(rgb):
    data = bytearray(_encoded(rgb.resize((100, 100)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = (9000).to_bytes(2, "big") * 2  # a 7 KB file claiming 9000 x 9000
    with pytest.raises(ImageError) as info:
        decode_image(bytes(data), "bomb.jpg")
    assert info.value.reason == "image too large: 9000 x 9000 pixels (81.0 Mpx) exceeds the limit of 64 Mpx"
    assert LIMITS.max_pixels == 64_000_000
    for size, words in (((20000, 5), "image too small: 20000 x 5 pixels"), ((400, 19), "degenerate shape")):
        with pytest.raises(ImageError, match=words):
            decode_image(_encoded(rgb.resize(size), "PNG"))
    assert decode_image(_encoded(rgb.resize((320, 16)), "PNG")).shape == (16, 320, 3)  # at both limits


def test_only_the_documented_formats_are_opened(rgb):
    for fmt in ("ICO", "TGA", "PCX"):
        with pytest.raises(ImageError, match="not an image of a supported format"):
            decode_image(_encoded(rgb, fmt), f"face.{fmt.lower()}.jpg")


def test_float_tiffs_follow_the_float_rule(rgb):
    import tifffile

    pixels = np.asarray(rgb)
    for values in (pixels.astype(np.float32) / 255, pixels.astype(np.float64), (pixels / 255).astype(np.float16)):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, values, photometric="rgb")
        np.testing.assert_array_equal(decode_image(buffer.getvalue(), "float.tif"), pixels)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels.astype(np.float32) * 4, photometric="rgb")
    with pytest.raises(ImageError, match=r"float samples span \[0, 944\]"):
        decode_image(buffer.getvalue(), "bright.tif")


def test_junk_where_a_header_should_be_is_refused_without_scanning_it_all():
    with pytest.raises(ImageError, match="no valid header after 100000 reads"):
        decode_image(b"\xff\xd8\xff" + bytes(2**20), "zeros.jpg")


def test_messages_escape_control_characters_but_keep_the_name():
    error = ImageError(os.fsdecode(b"\x1b[2Jnew\nline-\xff.jpg"), "bad\r")
    assert str(error) == "\\x1b[2Jnew\\nline-\\xff.jpg: bad\\r"
    assert error.path == os.fsdecode(b"\x1b[2Jnew\nline-\xff.jpg")
    assert safe_display("rtl-\u202egpj.exe 日本") == "rtl-\\u202egpj.exe 日本"


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()
