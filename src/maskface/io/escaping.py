"""Any file name as one line of UTF-8 text, reversibly: how report files (``--errors``, ``deocclusion.csv``)
write paths and reasons, so a name with a newline, a terminal escape or bytes that are not UTF-8 neither breaks a
row nor the writer.

The rule (:func:`escape_field`): a backslash becomes ``\\\\``; a byte that is not valid in the file-system encoding
(Python keeps it as a lone surrogate) becomes ``\\xNN``; a control character, line or paragraph separator,
bidirectional mark or other lone surrogate becomes ``\\n``, ``\\r``, ``\\t`` or ``\\uNNNN``; every other character
is kept. :func:`unescape_field` undoes it: ``os.fsencode(unescape_field(text))`` gives the original bytes.
"""

from __future__ import annotations

import os
import re
import unicodedata

from maskface.errors import BIDI_CONTROLS

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_ESCAPE = re.compile(r"\\(\\|n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _escaped(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
        return f"\\u{code:04x}"  # every such character lies in the Basic Multilingual Plane
    return char


def escape_field(text: str | os.PathLike | bytes) -> str:
    """``text`` (a path, name or reason) as one line of valid UTF-8, by the rule in this module's docstring."""
    text = os.fsdecode(text) if isinstance(text, bytes | os.PathLike) else str(text)
    return "".join(_escaped(char) for char in text)


def _unescaped(match: re.Match) -> str:
    code = match.group(1)
    if code[0] == "x":
        return chr(0xDC00 + int(code[1:], 16))  # back to the surrogate os.fsencode turns into the byte
    if code[0] == "u":
        return chr(int(code[1:], 16))
    return {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}[code]


def unescape_field(text: str) -> str:
    """The text :func:`escape_field` was given (undecodable bytes as lone surrogates: ``os.fsencode`` of the
    result gives the original bytes, and ``Path(result)`` opens the file)."""
    return _ESCAPE.sub(_unescaped, text)
