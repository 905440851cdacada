"""insightface's data formats, read without mxnet.

* ``.bin`` verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin ...): a pickle of ``(images, issame)`` where
  ``images`` holds 2N encoded images (consecutive pairs) and ``issame`` N booleans.
* ``.rec`` / ``.idx`` training records (MXNet RecordIO): each record is a magic number, a length word, then an
  ``IRHeader`` (flag, label, id, id2), optional extra labels, and the encoded image, padded to 4 bytes.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from maskface.errors import DatasetError
from maskface.io.images import decode_image

RECORD_MAGIC = 0xCED7230A
_HEADER = struct.Struct("<IfQQ")


class _SafeUnpickler(pickle.Unpickler):
    """Only plain containers, bytes and numpy arrays: a .bin file must not run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_verification_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """``(encoded images, issame)`` of an insightface ``.bin`` set; image ``2i`` and ``2i+1`` form pair ``i``."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            images, issame = _SafeUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(str(path), "file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DatasetError(str(path), f"not an insightface .bin verification set: {exc}") from None
    images = [bytes(b) for b in images]
    issame = np.asarray(issame, dtype=bool)
    if len(images) != 2 * len(issame):
        raise DatasetError(str(path), f"{len(images)} images for {len(issame)} pairs (expected twice as many)")
    return images, issame


@dataclass
class Record:
    label: float
    labels: np.ndarray
    id: int
    image: bytes

    def decode(self) -> np.ndarray:
        return decode_image(self.image, f"record {self.id}")


class RecordFile:
    """Random access to an MXNet ``.rec`` file through its ``.idx`` (lines ``index<TAB>offset``)."""

    def __init__(self, rec: str | Path, idx: str | Path | None = None):
        self.rec = Path(rec)
        idx = Path(idx) if idx else self.rec.with_suffix(".idx")
        if not self.rec.is_file():
            raise DatasetError(str(self.rec), "record file not found")
        if not idx.is_file():
            raise DatasetError(str(idx), "index file not found")
        self.offsets: dict[int, int] = {}
        for line_no, line in enumerate(idx.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    key, offset = line.split("\t")
                    self.offsets[int(key)] = int(offset)
                except ValueError:
                    raise DatasetError(str(idx), f"line {line_no}: expected 'index<TAB>offset'") from None
        self._handle = open(self.rec, "rb")  # noqa: SIM115 - kept open for random access

    def __len__(self) -> int:
        return len(self.offsets)

    def keys(self) -> list[int]:
        return sorted(self.offsets)

    def read(self, key: int) -> Record:
        if key not in self.offsets:
            raise DatasetError(str(self.rec), f"no record {key}")
        self._handle.seek(self.offsets[key])
        head = self._handle.read(8)
        if len(head) < 8:
            raise DatasetError(str(self.rec), f"record {key}: file ends early")
        magic, length_word = struct.unpack("<II", head)
        if magic != RECORD_MAGIC:
            raise DatasetError(str(self.rec), f"record {key}: bad magic 0x{magic:08x}")
        length = length_word & ((1 << 29) - 1)
        payload = self._handle.read(length)
        if len(payload) < length or length < _HEADER.size:
            raise DatasetError(str(self.rec), f"record {key}: truncated")
        flag, label, rec_id, _ = _HEADER.unpack_from(payload)
        extra = np.frombuffer(payload, "<f4", count=flag, offset=_HEADER.size) if flag else np.zeros(0, np.float32)
        return Record(label, extra.copy(), rec_id, payload[_HEADER.size + 4 * flag :])

    def __iter__(self) -> Iterator[Record]:
        for key in self.keys():
            yield self.read(key)

    def close(self) -> None:
        self._handle.close()


