"""The errors maskface raises for user mistakes: each names the file (or thing) and the reason."""

from __future__ import annotations

import os
import unicodedata

#: Characters that reorder the text around them on screen ("Trojan Source"): shown escaped, like control characters.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe_display(text: str | os.PathLike | bytes) -> str:
    """``text`` fit for one line of a terminal: control characters (newlines, ANSI escapes), bidirectional
    overrides and bytes that are not valid in the file-system encoding are shown as ``\\n``, ``\\x1b``,
    ``\\u202e``, ``\\xff``; everything else is kept."""
    text = os.fsdecode(text) if isinstance(text, bytes | os.PathLike) else str(text)
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
            out.append(char.encode("unicode_escape").decode("ascii") if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


class MaskfaceError(Exception):
    """Base class: a problem with user input that the CLI reports in one line, without a traceback.

    ``path`` and ``reason`` are kept as given; the message shows both through :func:`safe_display`, so a file
    name holding a newline or a terminal escape cannot break the line or drive the terminal."""

    def __init__(self, path: str | os.PathLike | bytes, reason: str):
        super().__init__(f"{safe_display(path)}: {safe_display(reason)}")
        self.path = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
        self.reason = reason


class ImageError(MaskfaceError):
    """An image (file, bytes or array) that cannot be used: missing, not a regular file, empty, corrupt,
    truncated, not an image of a supported format, of an unsupported pixel type, too large or degenerate."""


class NoFaceError(MaskfaceError):
    """No face was found in an image (or none that the chosen policy accepts)."""


class ModelFileError(MaskfaceError):
    """A model file that is missing, of the wrong kind, or malformed."""


class OutputError(MaskfaceError):
    """An output (a file or folder to write) that must not or cannot be written: it is or lies inside an input,
    names a device, FIFO or folder where a file is wanted (or a file where a folder is), or has an unwritable
    or missing parent."""


class DatasetError(MaskfaceError):
    """A dataset folder or protocol file that does not have the expected layout."""


class RunFolderError(MaskfaceError):
    """A run folder (written by ``maskface eval``) that lacks a file it needs."""


class GalleryError(MaskfaceError):
    """A gallery (SQLite file or PostgreSQL database) that cannot be used as asked: missing, not a gallery, of
    another model than the probe's, or an unknown person."""
