"""The API's input gate: paths, bytes, Pillow images and arrays become uint8 RGB by one rule, or a one-line
ImageError that says what to give instead."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskface.errors import ImageError, MaskfaceError
from maskface.io.images import load_image
from maskface.io.inputs import as_rgb, input_name


@pytest.fixture
def photo(lfw_root) -> Path:
    return lfw_root / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def _refusal(image, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        as_rgb(image, **kwargs)
    assert "\n" not in str(info.value) and isinstance(info.value, MaskfaceError)
    return info.value


def test_paths_bytes_and_pillow_images_give_the_same_pixels(photo):
    expected = load_image(photo)
    assert expected.shape == (250, 250, 3)
    data = photo.read_bytes()
    for image in (photo, str(photo), data, bytearray(data), memoryview(data), Image.open(photo)):
        np.testing.assert_array_equal(as_rgb(image), expected)
    lossless = _encoded(expected, "PNG")
    np.testing.assert_array_equal(as_rgb(lossless), expected)
    assert input_name(photo) == str(photo) and input_name(data) == "<bytes>" and input_name(expected) == "<array>"


def test_uint8_rgb_array_passes_unchanged_and_bgr_flips(photo):
    rgb = load_image(photo)
    assert as_rgb(rgb) is rgb  # contiguous uint8 RGB: no copy
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_array_equal(as_rgb(bgr, bgr=True), rgb)
    assert not np.array_equal(as_rgb(bgr), rgb)  # without the flag a BGR array is taken as RGB
    bgra = np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(as_rgb(bgra, bgr=True), rgb)
    np.testing.assert_array_equal(as_rgb(rgb[::2, ::2]), rgb[::2, ::2])  # a strided view comes out contiguous
    assert as_rgb(rgb[::2, ::2]).flags.c_contiguous


def test_grey_and_rgba_arrays_follow_the_documented_rule():
    grey = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    for image in (grey, grey[:, :, None]):
        out = as_rgb(image)
        assert out.shape == (16, 20, 3)
        for channel in range(3):
            np.testing.assert_array_equal(out[:, :, channel], grey)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)  # transparent becomes white
    rgba[0, 2] = (255, 0, 0, 128)  # half-transparent red over white: (255, 127, 127)
    out = as_rgb(rgba)
    assert out[0, :3].tolist() == [[255, 0, 0], [255, 255, 255], [255, 127, 127]]


def test_float_arrays_need_their_scale():
    values = np.tile(np.array([0.0, 0.5, 1.0, 1.001], np.float32), (16, 4))
    assert "float_range=(0, 1)" in _refusal(values).reason
    out = as_rgb(values, float_range=(0, 1))
    assert out[0, :4, 0].tolist() == [0, 128, 255, 255]  # 1.001 is within half a level of 1: rounding noise
    np.testing.assert_array_equal(as_rgb(values * 255, float_range=(0, 255))[0, :4, 0], [0, 128, 255, 255])
    np.testing.assert_array_equal(as_rgb(values.astype(np.float64), float_range=(0, 1)), out)
    assert "outside the stated range [0, 1]" in _refusal(values * 255, float_range=(0, 1)).reason
    assert "span [-0.5, 0.501]" in _refusal(values - 0.5, float_range=(0, 1)).reason
    broken = values.copy()
    broken[3, 3] = np.nan
    assert "NaN" in _refusal(broken, float_range=(0, 1)).reason
    assert "low before high" in _refusal(values, float_range=(1, 0)).reason


@pytest.mark.parametrize("dtype, words", [
    (np.uint16, "uint16 array: give uint8"), (np.int32, "int32 array: give uint8"),
    (np.int64, "int64 array: give uint8"), (np.bool_, "bool array"), (np.complex128, "complex128 array is not"),
    (object, "object array is not"),
])
def test_other_dtypes_are_refused(dtype, words):
    assert words in _refusal(np.zeros((32, 32, 3), dtype)).reason


@pytest.mark.parametrize("shape, words", [
    ((3, 64, 64), "channels-first array of shape (3, 64, 64)"),
    ((2, 64, 64, 3), "a batch of 2 images"),
    ((64, 64, 2), "2 channels"),
    ((64, 64, 5), "5 channels"),
    ((64,), "is not an image"),
    ((), "is not an image"),
    ((0, 64, 3), "zero size"),
    ((10, 10, 3), "image too small: 10 x 10"),
    ((5, 2000, 3), "image too small: 2000 x 5"),
    ((20, 500, 3), "degenerate shape: 500 x 20"),
])
def test_wrong_shapes_are_refused(shape, words):
    assert words in _refusal(np.zeros(shape, np.uint8)).reason


def test_other_inputs_are_refused_with_a_reason(tmp_path):
    assert "cannot read an image from a int" in _refusal(5).reason
    assert "cannot read an image from a list" in _refusal([[1, 2, 3]]).reason
    assert "empty string is not a path" in _refusal("").reason
    assert "not an image of a supported format" in _refusal(b"GIF? no, just text").reason
    assert _refusal(b"").reason == "empty file"
    assert _refusal(tmp_path / "missing.jpg").reason == "file not found"
