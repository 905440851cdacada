"""Reader for dlib's binary serialisation format (``dlib/serialize.h``), written from its specification.

Only the primitives are here; :mod:`maskface.models.dlib_resnet` walks the layer records of one network with them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from maskface.errors import ModelFileError

_FLOAT_SPECIALS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class DlibReader:
    """Sequential reader over the bytes of a dlib ``.dat`` file; every read names the offset it failed at."""

    def __init__(self, data: bytes, source: str = "<bytes>"):
        self.data = data
        self.pos = 0
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> DlibReader:
        from maskface.models.weights import model_file

        path = model_file(path)  # a regular file: never a FIFO, a device or a loop
        try:
            return cls(path.read_bytes(), str(path))
        except OSError as exc:
            raise ModelFileError(str(path), f"cannot read: {exc.strerror or exc}") from None

    def fail(self, reason: str) -> ModelFileError:
        return ModelFileError(self.source, f"{reason} (at byte {self.pos} of {len(self.data)})")

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends early: wanted {n} more bytes")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    @property
    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def read_int(self) -> int:
        """A control byte (low nibble: magnitude length, 0x80: negative), then the magnitude little-endian."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        """A float as ``mantissa * 2**exponent`` (int64, int16); exponents 32000-32002 mean inf, -inf, NaN."""
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent in _FLOAT_SPECIALS:
            return _FLOAT_SPECIALS[exponent]
        return float(mantissa) * 2.0**exponent

    def read_string(self) -> str:
        length = self.read_int()
        if length < 0:
            raise self.fail(f"negative string length {length}")
        raw = self._take(length)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("string is not ASCII") from None

    def read_bool(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"bad bool byte {char!r}")
        return char == b"1"

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        value = self.read_string()
        if value not in allowed:
            self.pos = start
            raise self.fail(f"expected record {' or '.join(allowed)!r}, found {value!r}")
        return value

    def expect_int(self, *allowed: int, what: str = "version") -> int:
        start = self.pos
        value = self.read_int()
        if value not in allowed:
            self.pos = start
            raise self.fail(f"unexpected {what} {value}, expected one of {allowed}")
        return value

    def read_tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: version 2, then n, k, nr, nc, then raw little-endian float32 values."""
        self.expect_int(2, what="tensor version")
        shape = tuple(self.read_int() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: version 1 and a shape; its values live in the layer's ``params`` tensor."""
        self.expect_int(1, what="alias_tensor version")
        return tuple(self.read_int() for _ in range(4))  # type: ignore[return-value]


def pack_int(value: int) -> bytes:
    """Encode an integer the way dlib does (used by tests to write small files in the exact format)."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def pack_float(value: float) -> bytes:
    """Encode a float as dlib's (mantissa, exponent) pair, exactly for float32-representable values."""
    numerator, denominator = float(value).as_integer_ratio()
    exponent = -(denominator.bit_length() - 1)
    while numerator and numerator % 2 == 0:  # keep the mantissa within dlib's int64
        numerator //= 2
        exponent += 1
    return pack_int(numerator) + pack_int(exponent)


def pack_tensor(array: np.ndarray) -> bytes:
    shape = (1,) * (4 - array.ndim) + array.shape if array.ndim < 4 else array.shape
    out = pack_int(2) + b"".join(pack_int(d) for d in shape)
    return out + struct.pack(f"<{array.size}f", *array.astype(np.float32).ravel())
