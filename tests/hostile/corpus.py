"""A seeded generator of hostile inputs: every way an image input can be broken, odd, special or badly named.

``build_corpus(root, lfw_root, seed)`` writes the corpus under ``root`` (a temporary folder: it is never committed)
and returns one :class:`Item` per input with its expected outcome at the image-reading layer: ``ok`` (and, where
the conversion rule fixes the pixels, a reference to compare with), or refused with a reason class of
:data:`REASONS`. Photos come from LFW, so faces are real; the same seed gives the same corpus.

Run ``python tests/hostile/corpus.py build OUT`` to write one by hand, ``... load OUT`` to read every item of it
through :func:`maskface.io.images.load_image` and print one JSON line per item (what the tests run in a
subprocess, to measure peak memory and catch hangs).
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageFilter

#: Reason classes: the words an ImageError's reason must contain for an item refused for that class.
REASONS: dict[str, tuple[str, ...]] = {
    "missing": ("file not found",),
    "not-a-folder": ("a part of the path is not a folder",),
    "dangling-link": ("dangling symlink",),
    "symlink-loop": ("symlink loop",),
    "directory": ("is a directory",),
    "special-file": ("not a regular file",),
    "permission": ("permission denied",),
    "empty": ("empty file",),
    "file-too-large": ("file too large",),
    "unsupported-format": ("not an image of a supported format",),
    "corrupt": ("corrupt image data",),
    "truncated": ("truncated image data",),
    "too-many-pixels": ("image too large",),
    "too-small": ("image too small", "zero size"),
    "degenerate": ("degenerate shape",),
    "bad-samples": ("float samples span", "NaN or infinite", "is not supported", "unsupported pixel format"),
}


def reason_class(reason: str) -> str:
    """The class of an ImageError's reason (``"?"`` for a reason no class describes)."""
    return next((name for name, words in REASONS.items() if any(w in reason for w in words)), "?")


@dataclass
class Item:
    """One input and what reading it must give."""

    path: str  # relative to the corpus root; undecodable bytes kept as os.fsdecode keeps them
    kind: str  # what it is, e.g. "jpeg truncated at 50%"
    group: str  # broken, bomb, format, orientation, special, name, collision, face, size
    expect: str = "ok"  # "ok" or a key of REASONS
    detail: str = ""  # further words the reason must contain (e.g. "FIFO")
    reference: str | None = None  # for ok items: a PNG holding the expected pixels
    tolerance: float = 0.0  # largest mean absolute difference from the reference (0: exact)
    orientation: int = 1  # EXIF orientation: the reference, transformed by it, is the expected image
    faces: int | None = None  # faces in the photo, for the commands that look for them (None: one or unknown)
    extra: dict = field(default_factory=dict)


#: Transforms that display an image stored with EXIF orientation k upright (the EXIF 2.3 table).
ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """The documented transparency rule, written independently: colour * a + white * (1 - a), rounded."""
    colour, alpha = rgba[..., :-1].astype(np.float64), rgba[..., -1:].astype(np.float64) / 255
    if colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    return np.floor(colour * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)


class _Writer:
    def __init__(self, root: Path, rng: random.Random):
        self.root, self.rng, self.items = root, rng, []

    def path(self, relative: str | bytes) -> Path:
        relative = os.fsdecode(relative)
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, relative: str | bytes, data: bytes | None, kind: str, group: str, **expect) -> Item:
        if data is not None:
            self.path(relative).write_bytes(data)
        item = Item(os.fsdecode(relative), kind, group, **expect)
        self.items.append(item)
        return item

    def reference(self, name: str, pixels: np.ndarray) -> str:
        relative = f"_references/{name}.png"
        self.path(relative).write_bytes(encode(np.ascontiguousarray(pixels), "PNG"))
        return relative


def _photos(lfw_root: Path, rng: random.Random, count: int) -> list[np.ndarray]:
    names = sorted(lfw_root.glob("*/*.jpg"))
    return [np.asarray(Image.open(p).convert("RGB")) for p in rng.sample(names, count)]


def build_corpus(root: Path, lfw_root: Path, seed: int = 0) -> list[Item]:
    """Write the corpus under ``root`` and return its items (also written to ``root/manifest.json``)."""
    rng = random.Random(seed)
    out = _Writer(Path(root), rng)
    photos = _photos(lfw_root, rng, 40)
    face = photos[0]
    _broken(out, face, rng)
    _bombs(out, face)
    _formats(out, face, photos[1])
    _orientations(out, photos[2][:, 30:220])  # 250 x 190: a rotation changes the shape
    _special(out, face)
    _names(out, face)
    _collisions(out, photos[3:7])
    _faces(out, photos[7:40])
    _sizes(out, face)
    manifest = [asdict(item) for item in out.items]
    (Path(root) / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out.items


def load_manifest(root: Path) -> list[Item]:
    return [Item(**fields) for fields in json.loads((Path(root) / "manifest.json").read_text())]


# --- broken files ---------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _broken(out: _Writer, face: np.ndarray, rng: random.Random) -> None:
    jpeg, png, gif = encode(face, "JPEG", quality=90), encode(face, "PNG"), encode(face, "GIF")
    webp, tiff, bmp = encode(face, "WEBP", quality=80), encode(face, "TIFF"), encode(face, "BMP")
    for suffix in (".jpg", ".png", ".gif", ".tif", ""):
        out.add(f"broken/empty{suffix or '-no-suffix'}{suffix}", b"", f"empty {suffix or 'extensionless'} file",
                "broken", expect="empty")
    # Truncated: the pixel data ends early (the header is whole). A file cut inside its header cannot be parsed.
    for name, data, fractions in (("jpeg", jpeg, (0.3, 0.5, 0.7, 0.9, 0.99)), ("png", png, (0.3, 0.5, 0.7, 0.9)),
                                  ("gif", gif, (0.5, 0.9)), ("webp", webp, (0.5, 0.9)),
                                  ("tiff", tiff, (0.5, 0.9)), ("bmp", bmp, (0.5, 0.9))):
        for fraction in fractions:
            cut = data[: int(len(data) * fraction)]
            out.add(f"broken/truncated-{name}-{int(fraction * 100)}.{name}", cut,
                    f"{name} cut at {fraction:.0%}", "broken", expect="truncated")
    for name, data, expect in (("jpeg", jpeg, "truncated"), ("png", png, "corrupt"), ("gif", gif, "corrupt")):
        out.add(f"broken/header-only-{name}.{name}", data[:12], f"{name}: the first 12 bytes", "broken",
                expect=expect)
    # Corrupt: a damaged header or damaged compressed data, the file whole.
    broken_png = bytearray(png)
    broken_png[16:20] = b"\xff\xff\xff\xff"  # IHDR width without fixing the CRC
    out.add("broken/png-bad-ihdr-crc.png", bytes(broken_png), "png: IHDR damaged, CRC wrong", "broken",
            expect="corrupt")
    zeroed = bytearray(png)
    start = zeroed.index(b"IDAT") + 8
    zeroed[start : start + 64] = bytes(64)
    out.add("broken/png-zeroed-idat.png", bytes(zeroed), "png: zeros inside the compressed data", "broken",
            expect="corrupt")
    no_sof = jpeg.replace(b"\xff\xc0", b"\xff\x01", 1)
    out.add("broken/jpeg-no-frame-header.jpg", no_sof, "jpeg: SOF marker destroyed", "broken", expect="corrupt")
    out.add("broken/jpeg-soi-then-random.jpg", b"\xff\xd8\xff" + rng.randbytes(5000), "jpeg SOI + random bytes",
            "broken", expect="corrupt")
    out.add("broken/png-signature-then-random.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(5000),
            "png signature + random bytes", "broken", expect="corrupt")
    out.add("broken/gif-header-then-random.gif", b"GIF89a" + rng.randbytes(5000), "gif header + random bytes",
            "broken", expect="corrupt")
    out.add("broken/tiff-header-then-random.tif", b"II*\x00" + rng.randbytes(5000), "tiff header + random bytes",
            "broken", expect="corrupt")
    out.add("broken/bmp-header-then-random.bmp", b"BM" + rng.randbytes(5000), "bmp header + random bytes (the "
            "random header states a longer file)", "broken", expect="truncated")
    # Not images at all: random bytes and other kinds of files, under image names.
    for index in range(12):
        data = rng.randbytes(rng.choice((1, 7, 100, 4096, 65536)))
        if data.startswith((b"\xff\xd8", b"\x89P", b"GI", b"BM", b"II", b"MM", b"P", b"RI")):
            data = b"\x00" + data
        out.add(f"broken/random-{index:02d}{rng.choice(('.jpg', '.png', '.gif', '.webp', ''))}", data,
                f"{len(data)} random bytes", "broken", expect="unsupported-format")
    others = {
        "text.jpg": b"just some text, not an image\n",
        "page.html.png": b"<!doctype html><html><body><img src=x.jpg></body></html>",
        "document.pdf.jpg": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
        "postscript.eps.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n0 0 moveto 100 100 lineto "
                              b"stroke showpage\n",
        "archive.zip.jpg": b"PK\x03\x04" + bytes(26) + b"PK\x05\x06" + bytes(18),
        "program.elf.png": b"\x7fELF\x02\x01\x01" + bytes(57),
        "svg.jpg": b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>',
        "json.png": b'{"image": "no"}',
    }
    for name, data in others.items():
        out.add(f"broken/{name}", data, f"not an image: {name}", "broken", expect="unsupported-format")
    # Image formats Pillow reads but maskface does not name: refused as unsupported, never decoded.
    for fmt, suffix in (("ICO", ".jpg"), ("TGA", ".png"), ("PCX", ".jpg"), ("SGI", ".jpg"),
                        ("DDS", ".jpg"), ("QOI", ".png")):
        try:
            data = encode(face, fmt)
        except (KeyError, OSError, ValueError):  # a Pillow built without this writer
            continue
        out.add(f"broken/{fmt.lower()}-renamed{suffix}", data, f"{fmt} named {suffix}", "broken",
                expect="unsupported-format")
    # Right image, wrong name: read by content.
    reference = out.reference("face", face)
    for data, name in ((png, "png-named.jpg"), (bmp, "bmp-named.gif"), (tiff, "tiff-named.png"),
                       (png, "png-without-suffix")):
        out.add(f"broken/{name}", data, f"wrong extension: {name}", "broken", reference=reference)
    out.add("broken/jpeg-named.png", jpeg, "wrong extension: jpeg-named.png", "broken", reference=reference,
            tolerance=3.0)


# --- bombs ---------------------------------------------------------------------------------------------------


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    data = bytearray(data)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    return data[:8] + _png_chunk(b"IHDR", bytes(ihdr)) + data[33:]


def _bombs(out: _Writer, face: np.ndarray) -> None:
    small = encode(face[:100, :100], "JPEG", quality=50)
    for width, height in ((9000, 9000), (8001, 8000), (65000, 65000), (30000, 3000)):
        out.add(f"bombs/jpeg-header-{width}x{height}.jpg", _jpeg_with_size(small, width, height),
                f"{len(small)}-byte JPEG whose header claims {width} x {height}", "bomb", expect="too-many-pixels")
    png = encode(face[:100, :100], "PNG")
    for width, height in ((9400, 9400), (100000, 100000), (2**31 - 1, 1000)):
        out.add(f"bombs/png-header-{width}x{height}.png", _png_with_size(png, width, height),
                f"PNG whose header claims {width} x {height}", "bomb", expect="too-many-pixels")
    real = encode(Image.new("1", (9400, 9400)), "PNG")  # a real 88 Mpx image, a few kB compressed
    out.add("bombs/png-real-9400x9400.png", real, f"real {len(real)}-byte PNG of 9400 x 9400", "bomb",
            expect="too-many-pixels")
    gif = bytearray(encode(face[:100, :100], "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    out.add("bombs/gif-screen-65535.gif", bytes(gif), "GIF whose screen is 65535 x 65535", "bomb",
            expect="too-many-pixels")
    bmp = bytearray(encode(face[:100, :100], "BMP"))
    bmp[18:26] = struct.pack("<ii", 30000, 30000)
    out.add("bombs/bmp-header-30000.bmp", bytes(bmp), "BMP whose header claims 30000 x 30000", "bomb",
            expect="too-many-pixels")
    out.add("bombs/pgm-header-30000.pgm", b"P5 30000 30000 255\n" + bytes(1000), "PGM header 30000 x 30000",
            "bomb", expect="too-many-pixels")
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, np.zeros((16, 16), np.uint8))
    data = bytearray(tiff.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as parsed:  # patch ImageWidth/ImageLength in place
        tags = parsed.pages[0].tags
        for code in (256, 257):
            offset = tags[code].valueoffset
            data[offset : offset + 2] = struct.pack("<H", 60000)
    out.add("bombs/tiff-header-60000.tif", bytes(data), "TIFF whose header claims 60000 x 60000", "bomb",
            expect="too-many-pixels")
    big = Image.fromarray(face).resize((8000, 8000), Image.Resampling.BILINEAR)
    out.add("bombs/largest-allowed-8000x8000.jpg", encode(big, "JPEG", quality=75),
            "a real 8000 x 8000 JPEG: at the pixel limit, read", "bomb", extra={"shape": [8000, 8000, 3]})


# --- pixel formats -------------------------------------------------------------------------------------------


def _tiff(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _formats(out: _Writer, face: np.ndarray, other: np.ndarray) -> None:
    grey = np.asarray(Image.fromarray(face).convert("L"))
    rgb_ref, grey_ref = out.reference("format-rgb", face), out.reference("format-grey", np.dstack([grey] * 3))
    add = out.add

    def ok(name: str, data: bytes, kind: str, reference: str, tolerance: float = 0.0, **extra) -> None:
        add(f"formats/{name}", data, kind, "format", reference=reference, tolerance=tolerance, **extra)

    ok("rgb.png", encode(face, "PNG"), "8-bit RGB PNG", rgb_ref)
    ok("rgb.bmp", encode(face, "BMP"), "24-bit BMP", rgb_ref)
    ok("rgb.ppm", encode(face, "PPM"), "binary PPM", rgb_ref)
    ok("grey.pgm", encode(grey, "PPM"), "binary PGM", grey_ref)
    ok("rgb-lossless.webp", encode(face, "WEBP", lossless=True), "lossless WebP", rgb_ref)
    ok("rgb-lossy.webp", encode(face, "WEBP", quality=90), "lossy WebP", rgb_ref, 4.0)
    ok("rgb.jpg", encode(face, "JPEG", quality=95), "baseline JPEG", rgb_ref, 3.0)
    ok("progressive.jpg", encode(face, "JPEG", quality=95, progressive=True), "progressive JPEG", rgb_ref, 3.0)
    ok("grey.jpg", encode(grey, "JPEG", quality=95), "greyscale JPEG", grey_ref, 3.0)
    ok("cmyk.jpg", encode(Image.fromarray(face).convert("CMYK"), "JPEG", quality=98), "CMYK JPEG", rgb_ref, 4.0)
    ok("cmyk.tif", encode(Image.fromarray(face).convert("CMYK"), "TIFF"), "CMYK TIFF", rgb_ref)
    for compression in ("tiff_lzw", "tiff_adobe_deflate", "packbits"):
        ok(f"rgb-{compression}.tif", encode(face, "TIFF", compression=compression), f"TIFF, {compression}", rgb_ref)
    ok("icc.jpg", encode(face, "JPEG", quality=95, icc_profile=b"\x00" * 128), "JPEG with an ICC profile",
       rgb_ref, 3.0)
    # 16-bit: v = g * 257 scales back to g exactly.
    ok("grey16.png", encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"), "16-bit greyscale PNG", grey_ref)
    ok("rgb16.png", cv2.imencode(".png", face[:, :, ::-1].astype(np.uint16) * 257)[1].tobytes(),
       "16-bit RGB PNG", rgb_ref)
    ok("grey16.pgm", b"P5 %d %d 65535\n" % grey.shape[::-1] + (grey.astype(">u2") * 257).tobytes(),
       "16-bit PGM", grey_ref)
    ok("grey16.tif", _tiff(grey.astype(np.uint16) * 257), "16-bit greyscale TIFF", grey_ref)
    ok("rgb16.tif", _tiff(face.astype(np.uint16) * 257, photometric="rgb"), "16-bit RGB TIFF", rgb_ref)
    ok("grey-int32.tif", _tiff(grey.astype(np.int32)), "32-bit integer greyscale TIFF of 0-255", grey_ref)
    # Float: [0, 1] or [0, 255] by the documented rule.
    ok("float32-grey.tif", _tiff(grey.astype(np.float32) / 255), "float32 greyscale TIFF in [0, 1]", grey_ref)
    ok("float32-rgb.tif", _tiff(face.astype(np.float32) / 255, photometric="rgb"), "float32 RGB TIFF in [0, 1]",
       rgb_ref)
    ok("float16-grey.tif", _tiff((grey / 255).astype(np.float16)), "float16 greyscale TIFF in [0, 1]", grey_ref)
    ok("float64-rgb-255.tif", _tiff(face.astype(np.float64), photometric="rgb"), "float64 RGB TIFF in [0, 255]",
       rgb_ref)
    ok("float32-rgb-planar.tif", _tiff(np.moveaxis(face.astype(np.float32) / 255, -1, 0), photometric="rgb",
                                       planarconfig="separate"), "float32 RGB TIFF, one plane per channel", rgb_ref)
    ok("float32-compressed.tif", _tiff(grey.astype(np.float32) / 255, compression="zlib"),
       "deflate-compressed float32 TIFF", grey_ref)
    nan = grey.astype(np.float32) / 255
    nan[10, 10] = np.nan
    add("formats/float32-nan.tif", _tiff(nan), "float TIFF with a NaN", "format", expect="bad-samples",
        detail="NaN")
    add("formats/float32-1000.tif", _tiff(grey.astype(np.float32) * 4), "float TIFF of 0-1020", "format",
        expect="bad-samples", detail="span")
    add("formats/float32-negative.tif", _tiff(grey.astype(np.float32) / 127.5 - 1), "float TIFF of -1 to 1",
        "format", expect="bad-samples", detail="span")
    add("formats/int8-rgb.tif", _tiff((face // 2).astype(np.int8), photometric="rgb"), "signed 8-bit RGB TIFF",
        "format", expect="bad-samples", detail="int8")
    add("formats/complex.tif", _tiff(grey.astype(np.complex64)), "complex-valued TIFF", "format",
        expect="bad-samples", detail="complex")
    # Palette, 1-bit, transparency.
    palette = Image.fromarray(face).quantize(64)
    palette_ref = out.reference("format-palette", np.asarray(palette.convert("RGB")))
    ok("palette.png", encode(palette, "PNG"), "palette PNG", palette_ref)
    ok("palette.gif", encode(palette, "GIF"), "palette GIF", palette_ref)
    ok("palette.bmp", encode(palette, "BMP"), "palette BMP", palette_ref)
    bits = grey > 128
    bits_ref = out.reference("format-1bit", np.dstack([bits.astype(np.uint8) * 255] * 3))
    ok("1bit.png", encode(Image.fromarray(bits), "PNG"), "1-bit PNG", bits_ref)
    ok("1bit.pbm", encode(Image.fromarray(bits), "PPM"), "PBM", bits_ref)
    ok("1bit.tif", encode(Image.fromarray(bits), "TIFF", compression="group4"), "1-bit CCITT G4 TIFF", bits_ref)
    alpha = np.tile(np.linspace(0, 255, face.shape[1]).astype(np.uint8), (face.shape[0], 1))
    rgba = np.dstack([face, alpha])
    rgba_ref = out.reference("format-rgba", composite_on_white(rgba))
    ok("rgba.png", encode(rgba, "PNG"), "RGBA PNG, alpha ramp", rgba_ref, 0.51)
    ok("rgba.webp", encode(rgba, "WEBP", lossless=True, exact=True), "RGBA lossless WebP", rgba_ref, 0.51)
    ok("rgba.tif", encode(rgba, "TIFF"), "RGBA TIFF", rgba_ref, 0.51)
    la = np.dstack([grey, alpha])
    ok("la.png", encode(Image.fromarray(la, "LA"), "PNG"), "grey + alpha PNG", out.reference(
        "format-la", composite_on_white(la)), 0.51)
    ok("rgba-float.tif", _tiff(rgba.astype(np.float32) / 255, photometric="rgb", extrasamples=[2]),
       "float32 RGBA TIFF", rgba_ref, 0.51)
    keyed = face.copy()
    keyed[:40] = (1, 2, 3)  # the transparent colour of an RGB PNG's tRNS chunk
    keyed_ref = keyed.copy()
    keyed_ref[:40] = 255
    ok("rgb-trns.png", encode(Image.fromarray(keyed), "PNG", transparency=(1, 2, 3)), "RGB PNG with a tRNS colour",
       out.reference("format-trns", keyed_ref))
    # Several frames: the first is read.
    frames = [Image.fromarray(img).quantize(64) for img in (face, other)]
    ok("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
       "animated GIF, 2 frames", palette_ref)
    ok("animated.webp", encode(Image.fromarray(face), "WEBP", save_all=True, append_images=[Image.fromarray(other)],
                               lossless=True, duration=100), "animated lossless WebP", rgb_ref)
    ok("multipage.tif", encode(Image.fromarray(face), "TIFF", save_all=True, append_images=[Image.fromarray(other)]),
       "2-page TIFF", rgb_ref)
    ok("mpo-like.jpg", encode(face, "JPEG", quality=95) + encode(other, "JPEG", quality=95),
       "two JPEGs back to back", rgb_ref, 3.0)


# --- EXIF orientation ----------------------------------------------------------------------------------------


def _exif(orientation: int | None = None, raw: bytes | None = None) -> bytes:
    if raw is not None:
        return raw
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _orientations(out: _Writer, photo: np.ndarray) -> None:
    photo = np.ascontiguousarray(photo)
    stored_png = out.reference("orientation-stored", photo)
    jpeg_pixels = np.asarray(Image.open(io.BytesIO(encode(photo, "JPEG", quality=92))).convert("RGB"))
    stored_jpeg = out.reference("orientation-stored-jpeg", jpeg_pixels)
    for orientation in range(1, 9):
        out.add(f"orientation/png-{orientation}.png", encode(photo, "PNG", exif=_exif(orientation)),
                f"PNG, EXIF orientation {orientation}", "orientation", reference=stored_png, orientation=orientation)
        out.add(f"orientation/jpeg-{orientation}.jpg", encode(photo, "JPEG", quality=92, exif=_exif(orientation)),
                f"JPEG, EXIF orientation {orientation}", "orientation", reference=stored_jpeg,
                orientation=orientation)
    out.add("orientation/jpeg-orientation-9.jpg", encode(photo, "JPEG", quality=92, exif=_exif(9)),
            "JPEG, EXIF orientation 9 (invalid): shown as stored", "orientation", reference=stored_jpeg)
    out.add("orientation/jpeg-exif-garbage.jpg", encode(photo, "JPEG", quality=92, exif=b"Exif\x00\x00" +
                                                        b"\xde\xad\xbe\xef" * 16),
            "JPEG with a damaged EXIF block: ignored, as viewers do", "orientation", reference=stored_jpeg)


# --- special files -------------------------------------------------------------------------------------------


def _special(out: _Writer, face: np.ndarray) -> None:
    folder = out.path("special/x").parent
    valid = encode(face, "JPEG", quality=90)
    os.mkfifo(folder / "fifo.jpg")
    out.add("special/fifo.jpg", None, "a FIFO named .jpg", "special", expect="special-file", detail="FIFO")
    for device in ("zero", "urandom", "null", "full"):
        (folder / f"dev-{device}.jpg").symlink_to(f"/dev/{device}")
        out.add(f"special/dev-{device}.jpg", None, f"a symlink to /dev/{device}", "special",
                expect="special-file", detail="character device")
    block = next((Path(f"/dev/{name}") for name in ("loop0", "sda", "vda", "nvme0n1")
                  if Path(f"/dev/{name}").is_block_device()), None)
    if block is not None:
        (folder / "block.jpg").symlink_to(block)
        out.add("special/block.jpg", None, f"a symlink to the block device {block}", "special",
                expect="special-file", detail="block device")
    with open(folder / "sparse-8GiB.jpg", "wb") as handle:
        handle.truncate(8 * 2**30)
    out.add("special/sparse-8GiB.jpg", None, "a sparse 8 GiB file", "special", expect="file-too-large")
    with open(folder / "sparse-200MiB-jpeg.jpg", "wb") as handle:  # under the cap: must not be read whole
        handle.write(b"\xff\xd8\xff")
        handle.truncate(200 * 2**20)
    out.add("special/sparse-200MiB-jpeg.jpg", None, "a sparse 200 MiB file starting like a JPEG", "special",
            expect="corrupt")
    (folder / "loop-a.jpg").symlink_to("loop-b.jpg")
    (folder / "loop-b.jpg").symlink_to("loop-a.jpg")
    out.add("special/loop-a.jpg", None, "a symlink loop", "special", expect="symlink-loop")
    out.add("special/loop-b.jpg", None, "the other half of the symlink loop", "special", expect="symlink-loop")
    (folder / "self.jpg").symlink_to("self.jpg")
    out.add("special/self.jpg", None, "a symlink to itself", "special", expect="symlink-loop")
    (folder / "dangling.jpg").symlink_to("gone.jpg")
    out.add("special/dangling.jpg", None, "a dangling symlink", "special", expect="dangling-link",
            detail="gone.jpg")
    out.add("special/missing.jpg", None, "a name that does not exist", "special", expect="missing")
    (folder / "folder.jpg").mkdir()
    out.add("special/folder.jpg", None, "a directory named .jpg", "special", expect="directory")
    (folder / "real.jpg").write_bytes(valid)
    (folder / "link.jpg").symlink_to("real.jpg")
    (folder / "link-to-link.jpg").symlink_to("link.jpg")
    reference = out.reference("special-real", np.asarray(Image.open(io.BytesIO(valid)).convert("RGB")))
    for name in ("real.jpg", "link.jpg", "link-to-link.jpg"):
        out.add(f"special/{name}", None, f"a regular file or links to it: {name}", "special", reference=reference)
    (folder / "not-a-folder.jpg").write_bytes(valid)
    out.add("special/not-a-folder.jpg", None, "a regular file, named below as if it were a folder", "special",
            reference=reference)
    out.add("special/not-a-folder.jpg/x.jpg", None, "a path that goes through a file", "special",
            expect="not-a-folder")
    unreadable = folder / "unreadable.jpg"
    unreadable.write_bytes(valid)
    unreadable.chmod(0)
    root = os.geteuid() == 0  # root reads any file: then it is an ordinary image
    out.add("special/unreadable.jpg", None, "a file with mode 000", "special",
            **({"reference": reference} if root else {"expect": "permission"}))
    here = Path.cwd()
    try:  # bind with a relative name: socket paths are limited to 108 bytes
        os.chdir(folder)
        with socket.socket(socket.AF_UNIX) as server:
            server.bind("socket.jpg")
    finally:
        os.chdir(here)
    out.add("special/socket.jpg", None, "a Unix socket named .jpg", "special", expect="special-file",
            detail="socket")


# --- hostile names -------------------------------------------------------------------------------------------


HOSTILE_NAMES: tuple[bytes, ...] = (
    b"\xff\xfe-undecodable.jpg", b"latin1-\xe9t\xe9.jpg", b"new\nline.jpg", b"carriage\rreturn.jpg",
    b"tab\there.jpg", b"\x1b[31mred\x1b[0m.jpg", b"\x1b]0;title\x07.jpg", b"bell\x07.jpg", b"-rf.jpg",
    b"--help.jpg", b"-", b"a" * 236 + b".jpg", b"b" * 251 + b".jpg", b"with space .jpg", b"quote'\"`$(id).jpg",
    b"back\\slash.jpg", b"..jpg", b".hidden.jpg", "日本語の名前.jpg".encode(), "emoji-\U0001f600.jpg".encode(),
    "rtl-\u202egpj.exe".encode(), b"C1-\xc2\x9b31m.jpg", b"del-\x7f.jpg", b"%s%n%x.jpg", b"*?[.jpg",
)


def _names(out: _Writer, face: np.ndarray) -> None:
    valid = encode(face, "JPEG", quality=90)
    reference = out.reference("names", np.asarray(Image.open(io.BytesIO(valid)).convert("RGB")))
    for index, name in enumerate(HOSTILE_NAMES):
        out.add(b"names/good/" + name, valid, f"hostile name {index}: an image", "name", reference=reference)
        out.add(b"names/bad/" + name, b"not an image " + name, f"hostile name {index}: not an image", "name",
                expect="unsupported-format")


# --- colliding stems -----------------------------------------------------------------------------------------


def _collisions(out: _Writer, photos: list[np.ndarray]) -> None:
    layout = (("a/x.jpg", "JPEG"), ("b/x.jpg", "JPEG"), ("y.jpg", "JPEG"), ("y.png", "PNG"), ("z.jpg", "JPEG"),
              ("z.JPEG", "JPEG"), ("w.jpg", "JPEG"), ("w.occlusion.jpg", "JPEG"), ("v.png", "PNG"),
              ("v.png.png", "PNG"), ("u", "PNG"), ("u.png", "PNG"))
    for index, (name, fmt) in enumerate(layout):
        photo = photos[index % len(photos)]
        data = encode(photo, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        out.add(f"collisions/{name}", data, f"colliding stem: {name}", "collision",
                reference=out.reference(f"collision-{index}", pixels))


# --- faces ---------------------------------------------------------------------------------------------------


def _faces(out: _Writer, photos: list[np.ndarray]) -> None:
    crops = [p[50:200, 50:200] for p in photos[:30]]  # the centred face of each LFW photo, 150 x 150
    grid = np.vstack([np.hstack(crops[row * 6 : row * 6 + 6]) for row in range(5)])  # 900 x 750
    out.add("faces/thirty-faces.png", encode(grid, "PNG"), "30 LFW faces in a 6 x 5 grid", "face",
            reference=out.reference("faces-30", grid), faces=30)
    blurred = np.asarray(Image.fromarray(photos[30]).filter(ImageFilter.GaussianBlur(25)))
    out.add("faces/blurred-photo.png", encode(blurred, "PNG"), "an LFW photo blurred past recognition", "face",
            reference=out.reference("faces-blurred", blurred), faces=0)
    wall = np.full((240, 320, 3), 90, np.uint8)
    out.add("faces/grey-wall.png", encode(wall, "PNG"), "a plain grey wall", "face",
            reference=out.reference("faces-wall", wall), faces=0)
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    out.add("faces/noise.png", encode(noise, "PNG"), "seeded noise", "face", reference=out.reference(
        "faces-noise", noise), faces=0)
    upside = np.ascontiguousarray(photos[31][::-1])
    out.add("faces/upside-down.png", encode(upside, "PNG"), "an LFW photo upside down", "face",
            reference=out.reference("faces-upside", upside))
    tiny = np.asarray(Image.fromarray(photos[32]).resize((24, 24)))
    out.add("faces/face-24px.png", encode(tiny, "PNG"), "a whole photo in 24 x 24 pixels", "face",
            reference=out.reference("faces-tiny", tiny))


# --- sizes ---------------------------------------------------------------------------------------------------


def _sizes(out: _Writer, face: np.ndarray) -> None:
    def image(width: int, height: int) -> np.ndarray:
        return np.asarray(Image.fromarray(face).resize((width, height)))

    for width, height, expect in ((20000, 5, "too-small"), (5, 20000, "too-small"), (1, 1, "too-small"),
                                  (15, 15, "too-small"), (15, 400, "too-small"), (400, 19, "degenerate"),
                                  (19, 400, "degenerate"), (4000, 100, "degenerate"), (16, 16, "ok"),
                                  (320, 16, "ok"), (16, 320, "ok"), (2000, 100, "ok")):
        pixels = image(width, height)
        reference = out.reference(f"size-{width}x{height}", pixels) if expect == "ok" else None
        out.add(f"sizes/{width}x{height}.png", encode(pixels, "PNG"), f"{width} x {height} PNG", "size",
                expect=expect, reference=reference)
    out.add("sizes/png-width-0.png", _png_with_size(encode(face[:100, :100], "PNG"), 0, 100),
            "PNG whose header says width 0", "size", expect="corrupt")
    out.add("sizes/jpeg-height-0.jpg", _jpeg_with_size(encode(face[:100, :100], "JPEG"), 100, 0),
            "JPEG whose header says height 0", "size", expect="corrupt")


# --- reading the corpus in a child process -------------------------------------------------------------------


def load_all(root: Path) -> None:
    """Read every item through load_image; print ``{"index", "outcome", "reason", "shape", "seconds",
    "max_rss_kb"}`` per item as it finishes (and ``{"index", "start"}`` before), so a hang names its item."""
    import resource
    import time

    from maskface.errors import ImageError
    from maskface.io.images import load_image

    for index, item in enumerate(load_manifest(root)):
        print(json.dumps({"index": index, "start": True}), flush=True)
        began = time.perf_counter()
        answer: dict = {"index": index}
        try:
            pixels = load_image(Path(root) / item.path)
            answer.update(outcome="ok", shape=list(pixels.shape), dtype=str(pixels.dtype))
            if item.reference:
                expected = np.asarray(Image.open(Path(root) / item.reference).convert("RGB"))
                expected = ORIENTATIONS[item.orientation](expected)
                same_shape = expected.shape == pixels.shape
                answer["difference"] = (float(np.abs(expected.astype(float) - pixels).mean()) if same_shape
                                        else None)
        except ImageError as exc:
            answer.update(outcome="refused", reason=exc.reason, message=str(exc))
        except BaseException as exc:  # the test reports any other exception as a failure
            answer.update(outcome="crash", reason=f"{type(exc).__name__}: {exc}")
        answer["seconds"] = time.perf_counter() - began
        answer["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "build":
        lfw = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parents[3] / "shared/data/lfw"
        built = build_corpus(folder, lfw)
        print(f"{len(built)} items in {folder}")
    elif command == "load":
        load_all(folder)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} build OUT [LFW] | load OUT")
