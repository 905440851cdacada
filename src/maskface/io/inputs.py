"""One gate for every image the Python API is given: a path, encoded bytes, a Pillow image or a numpy array.

Whatever comes in leaves as an ``HxWx3`` uint8 RGB array within :data:`maskface.io.images.LIMITS`, or as an
:class:`~maskface.errors.ImageError` with a one-line reason. The rule for arrays:

- ``uint8``, ``HxWx3`` in RGB order is taken as it is. OpenCV users pass ``bgr=True`` (``HxWx3`` BGR or ``HxWx4``
  BGRA, as ``cv2.imread`` gives): the channels are reversed.
- greyscale ``HxW`` or ``HxWx1`` is copied to R, G and B; ``HxWx4`` RGBA is composited on white, as files are.
- float arrays only with ``float_range=(lo, hi)``, their scale: ``(0, 1)`` or ``(0, 255)`` usually. ``lo`` maps
  to 0, ``hi`` to 255; values outside the range, NaN and infinities are refused.
- other dtypes (bool, uint16 and other integers, complex, object), channels-first ``3xHxW`` and batches
  ``NxHxWx3`` are refused, each saying what to do instead.

Paths and bytes are decoded by :mod:`maskface.io.images` (always RGB: ``bgr`` and ``float_range`` apply to arrays
only); Pillow images follow the rule for files.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from maskface.errors import ImageError
from maskface.io.images import LIMITS, ImageLimits, check_size, decode_image, load_image, pil_to_rgb
from maskface.io.pixels import float_to_uint8, to_rgb

ImageInput = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

_CHANNELS = (1, 3, 4)


def input_name(image: object) -> str:
    """How errors name an input: the path itself, or ``<bytes>``, ``<image>``, ``<array>``."""
    if isinstance(image, str | os.PathLike):
        return os.fsdecode(image)
    if isinstance(image, bytes | bytearray | memoryview):
        return "<bytes>"
    if isinstance(image, np.ndarray):
        return "<array>"
    return "<image>" if isinstance(image, Image.Image) else f"<{type(image).__name__}>"


def as_rgb(image: ImageInput, *, bgr: bool = False, float_range: tuple[float, float] | None = None,
           limits: ImageLimits = LIMITS) -> np.ndarray:
    """``image`` as a contiguous ``HxWx3`` uint8 RGB array, by the rule in this module's docstring."""
    name = input_name(image)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, bgr=bgr, float_range=float_range, limits=limits)
    if isinstance(image, bytes | bytearray | memoryview):
        return decode_image(image, name, limits)
    if isinstance(image, Image.Image):
        return pil_to_rgb(image, name, limits)
    if isinstance(image, str | os.PathLike):
        return load_image(image, limits)
    raise ImageError(name, f"cannot read an image from a {type(image).__name__}; give a file path, image bytes, "
                           "a Pillow image or an HxWx3 uint8 RGB array")


def array_to_rgb(array: np.ndarray, *, bgr: bool = False, float_range: tuple[float, float] | None = None,
                 limits: ImageLimits = LIMITS, name: str = "<array>") -> np.ndarray:
    """A numpy image as a contiguous ``HxWx3`` uint8 RGB array, or :class:`ImageError` saying what to change.
    Dtype, shape and size are checked before a float array is converted."""
    _check_dtype(array.dtype, float_range, name)
    shape = array.shape
    if array.ndim == 4:
        raise ImageError(name, f"a batch of {shape[0]} images (shape {shape}); give one HxWx3 image at a time")
    if array.ndim == 3 and shape[2] not in _CHANNELS and shape[0] in _CHANNELS:
        raise ImageError(name, f"channels-first array of shape {shape}; give HxWxC, e.g. array.transpose(1, 2, 0)")
    if array.ndim not in (2, 3):
        raise ImageError(name, f"array of shape {shape} is not an image; give HxWx3 (RGB), HxW (grey) or HxWx4 "
                               "(RGBA)")
    if array.ndim == 3 and shape[2] not in _CHANNELS:
        raise ImageError(name, f"{shape[2]} channels (shape {shape}); give 3 (RGB), 1 (grey) or 4 (RGBA)")
    check_size(shape[1], shape[0], name, limits)
    pixels = float_to_uint8(array, float_range, name) if array.dtype.kind == "f" else array
    if bgr and pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = pixels[:, :, [2, 1, 0, 3][: pixels.shape[2]]]
    return to_rgb(pixels, name)


def _check_dtype(dtype: np.dtype, float_range: tuple[float, float] | None, name: str) -> None:
    if dtype == np.uint8 or (dtype.kind == "f" and float_range is not None):
        return
    if dtype.kind == "f":
        raise ImageError(name, f"{dtype} array: say its scale with float_range=(0, 1) or (0, 255), or give uint8")
    if dtype.kind == "b":
        raise ImageError(name, "bool array: give uint8 levels, e.g. array.astype(np.uint8) * 255")
    if dtype.kind in "iu":
        raise ImageError(name, f"{dtype} array: give uint8 (0-255); scale other integer ranges first, e.g. "
                               "(array >> 8).astype(np.uint8) for 16-bit")
    raise ImageError(name, f"{dtype} array is not an image; give uint8 RGB")
