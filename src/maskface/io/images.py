"""Read any image file a user has into an 8-bit RGB array, or fail with an error naming the file and the reason.

Reads the documented formats only (JPEG, PNG, PBM/PGM/PPM, GIF, BMP, WebP, TIFF), whatever the file name says
(extensionless files too): an EPS or PDF renamed ``.jpg`` never reaches a PostScript interpreter. Applies the EXIF
orientation and turns greyscale, palette, RGBA, CMYK, 1-bit, 16-bit and float images into 8-bit RGB
(:mod:`maskface.io.pixels`). Before a byte is decoded, the file must be a regular file within
:attr:`ImageLimits.max_file_bytes` (:mod:`maskface.io.input_files`), and the header's size must be within
:class:`ImageLimits`: not a bomb, not a sliver.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from maskface.errors import ImageError
from maskface.io.input_files import format_bytes, is_regular_file, open_input_file
from maskface.io.pixels import file_float_range, float_to_uint8, to_rgb


@dataclass(frozen=True)
class ImageLimits:
    """What an input image may be, checked from the file's size and the image header before decoding.

    ``max_pixels``: 64 Mpx (8000 x 8000) is above any photo a face pipeline needs (it searches at 1600 px on
    the long side) and keeps one decode under about 1 GB of memory; larger headers are bombs or scans.
    ``max_file_bytes``: 256 MiB holds an uncompressed 8-bit RGB image of the largest size (192 MB).
    ``min_side`` and ``max_aspect``: a 20000 x 5 strip or a 10 x 10 icon holds no face and breaks resizing.
    """

    max_pixels: int = 64_000_000
    max_file_bytes: int = 256 * 2**20
    min_side: int = 16
    max_aspect: float = 20.0


#: The limits every reader applies unless told otherwise.
LIMITS = ImageLimits()

#: Pillow's names of the formats maskface reads (PPM covers PBM, PGM, PPM and PFM).
SUPPORTED_FORMATS = ("JPEG", "PNG", "PPM", "GIF", "BMP", "WEBP", "TIFF")
SUPPORTED_NAMES = "JPEG, PNG, PBM/PGM/PPM, GIF, BMP, WebP or TIFF"

#: Suffixes that :func:`iter_image_files` picks up from folders (files named directly are always tried).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".gif", ".bmp", ".webp", ".tif", ".tiff"}

#: Leading bytes of the image formats we read, to recognise files whatever their name (Yale: ``subject01.sad``).
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF87a", b"GIF89a", b"BM", *TIFF_SIGNATURES, b"P1", b"P2", b"P3",
              b"P4", b"P5", b"P6", b"Pf", b"PF")


def has_image_signature(head: bytes) -> bool:
    """Whether bytes start like one of the image formats maskface reads."""
    return head.startswith(SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def check_size(width: int, height: int, name: str, limits: ImageLimits = LIMITS) -> None:
    """Raise :class:`ImageError` for an image size outside ``limits`` (zero, too many pixels, too small, a
    sliver)."""
    if width <= 0 or height <= 0:
        raise ImageError(name, f"image has zero size ({width} x {height} pixels)")
    if width * height > limits.max_pixels:
        raise ImageError(name, f"image too large: {width} x {height} pixels ({width * height / 1e6:.1f} Mpx) "
                               f"exceeds the limit of {limits.max_pixels / 1e6:g} Mpx")
    if min(width, height) < limits.min_side:
        raise ImageError(name, f"image too small: {width} x {height} pixels; both sides must be at least "
                               f"{limits.min_side}")
    if max(width, height) > limits.max_aspect * min(width, height):
        raise ImageError(name, f"degenerate shape: {width} x {height} pixels; the longer side may be at most "
                               f"{limits.max_aspect:g} times the shorter")


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    """A loaded Pillow image of any mode as ``HxWx3`` uint8 RGB, without a second full-size copy where possible."""
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float32)
        return to_rgb(float_to_uint8(values, file_float_range(values, name), name), name)
    if img.mode.startswith("I"):  # 16-bit (I;16*) or 32-bit integer greyscale, scaled through a lookup table
        values = np.asarray(img)
        sixteen_bit = img.mode.startswith("I;16")
        peak = 65535 if sixteen_bit or values.max(initial=0) > 255 else 255
        if not sixteen_bit:
            values = np.clip(values, 0, peak)
        levels = (np.arange(peak + 1, dtype=np.float64) * (255 / peak) + 0.5).astype(np.uint8)
        return to_rgb(levels[values], name)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return to_rgb(np.asarray(img if img.mode == "RGBA" else img.convert("RGBA")), name)
    if img.mode in ("RGB", "L"):
        return to_rgb(np.array(img, dtype=np.uint8), name)
    return np.array(img.convert("RGB"), dtype=np.uint8)


def _cut_short(head: bytes, size: int | None) -> str | None:
    """Why a file is truncated, when its container header states a longer length (RIFF for WebP, BMP)."""
    if size is None:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared, container = int.from_bytes(head[4:8], "little") + 8, "RIFF"
    elif head[:2] == b"BM":
        declared, container = int.from_bytes(head[2:6], "little"), "BMP"
    else:
        return None
    return f"the file has {size} bytes, its {container} header says {declared}" if declared > size else None


def _failure(name: str, exc: Exception, head: bytes = b"", size: int | None = None) -> ImageError:
    short = _cut_short(head, size)
    if short:
        return ImageError(name, f"truncated image data: {short}")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    kind = "truncated image data" if "truncated" in reason.lower() else "corrupt image data"
    return ImageError(name, f"{kind}: {reason}")


class _ReadBudget:
    """A file that refuses more than ``limit`` reads while Pillow parses the header.

    Pillow's header parsers skip junk one byte per read (a JPEG of 200 MiB of zeros takes 37 s), while a real
    header takes tens to hundreds of reads; past the budget the file is junk where a header should be."""

    def __init__(self, handle: BinaryIO, name: str, limit: int):
        self.handle, self.name_for_errors, self.limit, self.reads = handle, name, limit, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.limit and self.reads > self.limit:
            raise ImageError(self.name_for_errors, f"corrupt image data: no valid header after "
                                                   f"{self.limit} reads (junk where the header should be)")
        return self.handle.read(size)

    def __getattr__(self, attribute: str):
        return getattr(self.handle, attribute)


#: Reads Pillow may make while parsing one header (see :class:`_ReadBudget`).
HEADER_READS = 100_000


def _decode(handle: BinaryIO, name: str, limits: ImageLimits) -> np.ndarray:
    """Decode an open binary file: formats and size checked from the header before the pixels are read."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    head = handle.read(16)
    handle.seek(0)
    guarded = _ReadBudget(handle, name, HEADER_READS)
    try:
        with warnings.catch_warnings():  # bomb warnings (our limit is lower, checked below) and damaged EXIF
            warnings.simplefilter("ignore")
            img = Image.open(guarded, formats=SUPPORTED_FORMATS)  # type: ignore[arg-type]
    except ImageError:
        raise
    except UnidentifiedImageError:
        if head.startswith(TIFF_SIGNATURES):  # float, or other sample types Pillow does not read
            from maskface.io.tiff import read_tiff

            handle.seek(0)
            return read_tiff(io.BytesIO(handle.read()), name, limits)
        short = _cut_short(head, size)
        if short:
            raise ImageError(name, f"truncated image data: {short}") from None
        if has_image_signature(head):
            raise ImageError(name, "corrupt image data: the header of a known format cannot be parsed") from None
        raise ImageError(name, f"not an image of a supported format ({SUPPORTED_NAMES})") from None
    except Image.DecompressionBombError as exc:  # Pillow's own check, for headers far above our limit
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size_text = f"{int(found.group(1)) / 1e6:.1f} Mpx" if found else "the size in its header"
        raise ImageError(name, f"image too large: {size_text} exceeds the limit of {limits.max_pixels / 1e6:g} "
                               "Mpx") from None
    except Exception as exc:  # a hostile header can raise anything a parser can; every one is the file's fault
        raise _failure(name, exc, head, size) from None
    guarded.limit = 0  # the header is parsed: decoders read in large blocks
    with img:
        return pil_to_rgb(img, name, limits, lambda exc: _failure(name, exc, head, size))


def pil_to_rgb(img: Image.Image, name: str, limits: ImageLimits = LIMITS,
               failure: Callable[[Exception], ImageError] | None = None) -> np.ndarray:
    """An opened Pillow image as upright ``HxWx3`` uint8 RGB: its size checked against ``limits`` before its
    pixels are decoded, then EXIF orientation and the pixel rule of :mod:`maskface.io.pixels` applied."""
    check_size(img.width, img.height, name, limits)
    try:
        img.load()
    except Exception as exc:
        raise (failure(exc) if failure else _failure(name, exc)) from None
    upright = img
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged EXIF block is ignored, as viewers do; the pixels are sound
        if img.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):  # else no copy is made
            upright = ImageOps.exif_transpose(img)
    try:
        return _pil_to_rgb(upright, name)
    except ImageError:
        raise
    except (ValueError, OSError) as exc:
        raise ImageError(name, f"unsupported pixel format {img.mode}: {exc}") from None


def decode_image(data: bytes | bytearray | memoryview, name: str = "<bytes>", limits: ImageLimits = LIMITS
                 ) -> np.ndarray:
    """Decode image bytes to an ``HxWx3`` uint8 RGB array, upright per its EXIF orientation."""
    if not len(data):
        raise ImageError(name, "empty file")
    if len(data) > limits.max_file_bytes:
        raise ImageError(name, f"file too large: {format_bytes(len(data))} exceeds the limit of "
                               f"{format_bytes(limits.max_file_bytes)}")
    return _decode(io.BytesIO(data), name, limits)


def load_image(path: str | os.PathLike, limits: ImageLimits = LIMITS) -> np.ndarray:
    """Read an image file to an ``HxWx3`` uint8 RGB array, or raise :class:`ImageError` naming file and reason.

    Only a regular file (symlinks followed) within ``limits.max_file_bytes`` is opened; FIFOs, devices, sockets,
    directories, symlink loops and dangling links are refused, each with its own reason, without blocking."""
    name = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    with open_input_file(path, limits.max_file_bytes) as handle:
        return _decode(handle, name, limits)


def save_image(array: np.ndarray, path: str | Path) -> None:
    """Write an RGB (or single-channel) uint8 array as an image, atomically (temp file, then rename)."""
    from maskface.io.files import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=_format_for(Path(path)))
    atomic_write_bytes(path, buffer.getvalue())


def _format_for(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")


def _sniff(path: Path) -> bool:
    """Whether a regular file starts with an image signature (never opens a FIFO or device)."""
    if not is_regular_file(path):
        return False
    try:
        with open_input_file(path, LIMITS.max_file_bytes) as handle:
            return has_image_signature(handle.read(12))
    except (ImageError, OSError):
        return False


def iter_image_files(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_path)`` pairs, sorted; folders are walked recursively.

    A folder contributes every entry with an image suffix that is not a folder, whatever it is (a FIFO, device,
    dangling link or symlink loop named ``x.jpg`` is listed, so that reading it reports why it was refused), and
    regular files of other names whose first bytes are an image signature (Yale's ``subject01.sad``). Files
    named directly are always included, so a bad one is reported rather than skipped. A file reached twice (the
    same path named twice, or a folder and a file in it) is listed once, where it is first met.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()

    def add(path: Path, relative: Path) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            found.append((path, relative))

    for item in inputs:
        if isinstance(item, str) and not item:
            raise ImageError("''", "an empty string is not a path")
        item = Path(item)
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                if path.is_dir():
                    continue
                if path.suffix.lower() in IMAGE_SUFFIXES or (not path.name.startswith(".") and _sniff(path)):
                    add(path, path.relative_to(item))
        else:
            add(item, Path(item.name))
    return found
