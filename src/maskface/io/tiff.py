"""TIFF files that Pillow does not read: float16/32/64 greyscale and RGB(A) samples, read with tifffile.

Pillow reads 8/16/32-bit integer TIFFs and 32-bit float greyscale ones; scientific and HDR tools also write float
RGB and float16 or float64 samples. Those are read here under the same limits, and converted by the float rule of
:mod:`maskface.io.pixels`; any other TIFF Pillow cannot read is refused with what it holds.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np

from maskface.errors import ImageError
from maskface.io.images import ImageLimits, check_size
from maskface.io.input_files import format_bytes
from maskface.io.pixels import file_float_range, float_to_uint8, to_rgb

#: Decoded float samples may take this many bytes per pixel of ``ImageLimits.max_pixels`` (256 MB by default).
FLOAT_BYTES_PER_PIXEL = 4

_PHOTOMETRIC = {1: "greyscale", 2: "RGB"}  # MINISBLACK, RGB: the float layouts read here


def read_tiff(handle: BinaryIO, name: str, limits: ImageLimits) -> np.ndarray:
    """A float TIFF as ``HxWx3`` uint8 RGB, or :class:`ImageError` saying what the file holds and why not."""
    import tifffile

    handle.seek(0)
    logger = logging.getLogger("tifffile")  # it logs what it then raises; the ImageError says it once
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(handle) as tif:
            page = tif.pages[0]
            width, height, samples = int(page.imagewidth), int(page.imagelength), int(page.samplesperpixel)
            dtype = page.dtype
            photometric = int(page.photometric)
            axes = page.axes
            if dtype is None or dtype.kind != "f":
                raise ImageError(name, f"TIFF with {samples} sample(s) of {page.bitspersample}-bit "
                                       f"{dtype or 'unknown'} type per pixel is not supported")
            if photometric not in _PHOTOMETRIC:
                raise ImageError(name, f"float TIFF with photometric interpretation {photometric} is not "
                                       "supported (only greyscale and RGB)")
            check_size(width, height, name, limits)
            needed = width * height * samples * dtype.itemsize
            budget = limits.max_pixels * FLOAT_BYTES_PER_PIXEL
            if needed > budget:
                raise ImageError(name, f"float TIFF too large to decode: {format_bytes(needed)} of samples "
                                       f"exceeds the limit of {format_bytes(budget)}")
            values = page.asarray()
    except ImageError:
        raise
    except Exception as exc:  # tifffile raises many kinds for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(name, f"corrupt image data: the TIFF cannot be read: {reason}") from None
    finally:
        logger.setLevel(level)
    values = np.squeeze(values)
    if values.ndim == 3 and axes.endswith("SYX"):  # planar (one plane per sample): to pixel-interleaved
        values = np.moveaxis(values, 0, -1)
    if values.shape[:2] != (height, width):
        raise ImageError(name, f"float TIFF of layout {axes} {values.shape} is not supported")
    return to_rgb(float_to_uint8(values, file_float_range(values, name), name), name)
