"""Read any image file a user has into an 8-bit RGB array, or fail with an error naming the file and the reason.

Handles JPEG/PNG/PGM/GIF/BMP/WebP/TIFF whatever the file name says (extensionless files too), EXIF orientation,
greyscale, palette, RGBA, CMYK, 1-bit and 16-bit/float images. Refuses empty, corrupt, truncated, non-image and
over-large (decompression-bomb) files.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskface.errors import ImageError

#: Largest image accepted, in pixels (about 16k x 16k); larger files are refused before decoding.
MAX_PIXELS = 256_000_000

#: Suffixes that :func:`iter_image_files` picks up from folders (files named directly are always tried).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".gif", ".bmp", ".webp", ".tif", ".tiff"}

#: Leading bytes of the image formats we read, to recognise files whatever their name (Yale: ``subject01.sad``).
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"P1", b"P2",
              b"P3", b"P4", b"P5", b"P6")


def has_image_signature(head: bytes) -> bool:
    """Whether bytes start like one of the image formats maskface reads."""
    return head.startswith(SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _sniff(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return has_image_signature(handle.read(12))
    except OSError:
        return False


def _to_uint8_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: transparent pixels are background, and black backgrounds hide dark hair.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to an ``HxWx3`` uint8 RGB array, upright per its EXIF orientation."""
    if not data:
        raise ImageError(name, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(name, f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")
            if width == 0 or height == 0:
                raise ImageError(name, "image has zero size")
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _to_uint8_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        if has_image_signature(data[:12]):
            raise ImageError(name, "corrupt image data: the header of a known format cannot be parsed") from None
        raise ImageError(name, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(name, f"image too large (decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        kind = "truncated image data" if "truncated" in reason.lower() else "corrupt image data"
        raise ImageError(name, f"{kind}: {reason}") from None


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file to an ``HxWx3`` uint8 RGB array, or raise :class:`ImageError` naming file and reason."""
    path = Path(path)
    if not path.exists():
        raise ImageError(str(path), "file not found")
    if path.is_dir():
        raise ImageError(str(path), "is a directory, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return decode_image(data, str(path), max_pixels)


def save_image(array: np.ndarray, path: str | Path) -> None:
    """Write an RGB (or single-channel) uint8 array as an image, atomically (temp file, then rename)."""
    from maskface.io.files import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=_format_for(Path(path)))
    atomic_write_bytes(path, buffer.getvalue())


def _format_for(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")


def output_stem(out_dir: str | Path, relative: Path) -> Path:
    """Where outputs for an input go: ``OUT/relative`` without its image suffix. Only image suffixes are dropped,
    so Yale's ``subject01.sad`` and ``subject01.happy`` keep distinct names instead of overwriting each other."""
    if relative.suffix.lower() in IMAGE_SUFFIXES:
        relative = relative.with_suffix("")
    return Path(out_dir) / relative


def iter_image_files(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative_path)`` pairs, sorted; folders are walked recursively.

    A folder contributes files with image suffixes and files of other names whose first bytes are an image
    signature (Yale's ``subject01.sad``); files named directly are always included, so a bad one is reported
    rather than skipped.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                if path.suffix.lower() in IMAGE_SUFFIXES or (not path.name.startswith(".") and _sniff(path)):
                    found.append((path, path.relative_to(item)))
        else:
            found.append((item, Path(item.name)))
    return found
