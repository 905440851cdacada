"""Pixel arrays of any layout maskface accepts turned into 8-bit RGB, by one documented rule for files and arrays.

- 1 channel (grey): copied to R, G and B.
- 2 channels (grey + alpha) and 4 channels (RGBA): composited on white; transparent pixels are background, and a
  black background would hide dark hair.
- float samples: mapped linearly from a stated range (``lo -> 0``, ``hi -> 255``) and rounded; values outside the
  range by more than half an 8-bit level, NaN and infinities are refused.
"""

from __future__ import annotations

import numpy as np

from maskface.errors import ImageError

#: Float ranges a float image *file* may use; the first one that holds all its samples is taken.
FILE_FLOAT_RANGES = ((0.0, 1.0), (0.0, 255.0))

_BLEND_ROWS = 256


def float_to_uint8(values: np.ndarray, value_range: tuple[float, float], name: str) -> np.ndarray:
    """Float samples in ``value_range`` as uint8 levels: ``lo -> 0``, ``hi -> 255``, rounded."""
    lo, hi = (float(v) for v in value_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ImageError(name, f"float range ({lo:g}, {hi:g}) must be two finite numbers, low before high")
    values = np.asarray(values)
    if not np.isfinite(values).all():
        raise ImageError(name, "float image holds NaN or infinite samples")
    if values.size:
        low, high = float(values.min()), float(values.max())
        slack = (hi - lo) / 510  # half an 8-bit level: rounding noise of a computation, not a wrong scale
        if low < lo - slack or high > hi + slack:
            raise ImageError(name, f"float samples span [{low:g}, {high:g}], outside the stated range "
                                   f"[{lo:g}, {hi:g}]")
    scaled = values.astype(np.float32)  # a copy, scaled in place: one float image of memory, not four
    scaled -= np.float32(lo)
    scaled *= np.float32(255.0 / (hi - lo))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def file_float_range(values: np.ndarray, name: str) -> tuple[float, float]:
    """The range of a float image file: [0, 1] when every sample lies in it (the usual convention), else
    [0, 255]; samples outside both, NaN and infinities are refused."""
    if not np.isfinite(values).all():
        raise ImageError(name, "float image holds NaN or infinite samples")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    for lo, hi in FILE_FLOAT_RANGES:
        slack = (hi - lo) / 510
        if low >= lo - slack and high <= hi + slack:
            return lo, hi
    raise ImageError(name, f"float samples span [{low:g}, {high:g}]; float images must hold values in [0, 1] "
                           "or [0, 255]")


def to_rgb(pixels: np.ndarray, name: str) -> np.ndarray:
    """An ``HxW`` or ``HxWxC`` uint8 array (C = 1, 2, 3 or 4) as contiguous ``HxWx3`` RGB, per the module's rule."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    channels = pixels.shape[2]
    if channels == 3:
        return np.ascontiguousarray(pixels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels in (2, 4):
        rgb = np.empty(pixels.shape[:2] + (3,), np.uint8)
        for top in range(0, len(pixels), _BLEND_ROWS):  # in bands, so the 16-bit temporaries stay small
            band = pixels[top : top + _BLEND_ROWS].astype(np.uint16)
            colour = band[:, :, :-1] if channels == 4 else band[:, :, :1]
            alpha = band[:, :, -1:]
            rgb[top : top + _BLEND_ROWS] = (colour * alpha + 255 * (255 - alpha) + 127) // 255
        return rgb
    raise ImageError(name, f"{channels} channels per pixel; maskface reads 1 (grey), 2 (grey + alpha), 3 (RGB) "
                           "or 4 (RGBA)")
