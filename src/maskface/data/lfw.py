"""LFW: images, View 2 (``pairs.txt``, ``people.txt``: 10 identity-disjoint folds) and View 1 (Dev train/test).

Layout: ``ROOT/<Name>/<Name>_NNNN.jpg`` with the protocol files in ``ROOT``. The data folder comes from an option
or ``MASKFACE_DATA`` (which may hold ``lfw/`` or be the LFW folder itself).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from maskface.data.pairs import Pair
from maskface.errors import DatasetError

LFW_HINT = ("LFW is not at {path}. Get the deep-funneled images and protocol files from the LFW site "
            "(lfw-deepfunneled.tgz, pairs.txt, people.txt), unpack them so that {path}/<Name>/<Name>_0001.jpg "
            "exists, and pass --data or set MASKFACE_DATA.")


def find_lfw(data: str | Path | None = None) -> Path:
    """The LFW folder from ``data`` or ``$MASKFACE_DATA`` (either the LFW folder or a folder holding ``lfw/``)."""
    base = data or os.environ.get("MASKFACE_DATA")
    if not base:
        raise DatasetError("LFW", "no data folder given: pass --data DIR or set MASKFACE_DATA. "
                                  + LFW_HINT.format(path="DIR/lfw").split(". ", 1)[1])
    base = Path(base)
    for candidate in (base, base / "lfw"):
        if (candidate / "pairs.txt").is_file():
            return candidate
    raise DatasetError(str(base), LFW_HINT.format(path=base))


IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".bmp", ".webp")


def image_path(root: Path, name: str, number: int) -> Path:
    """``ROOT/<name>/<name>_NNNN.jpg``, or the same stem with another image extension (MFR2 uses .png)."""
    stem = root / name / f"{name}_{number:04d}"
    for extension in IMAGE_EXTENSIONS:
        candidate = stem.with_suffix(extension)
        if candidate.is_file():
            return candidate
    return stem.with_suffix(".jpg")


def _lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DatasetError(str(path), "protocol file not found")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _pair(root: Path, fields: list[str], fold: int, path: Path, line: int) -> Pair:
    try:
        if len(fields) == 3:
            name, n1, n2 = fields
            return Pair(image_path(root, name, int(n1)), image_path(root, name, int(n2)), True, fold)
        if len(fields) == 4:
            name1, n1, name2, n2 = fields
            return Pair(image_path(root, name1, int(n1)), image_path(root, name2, int(n2)), False, fold)
    except ValueError:
        pass
    raise DatasetError(str(path), f"line {line}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {fields}")


def read_pairs(path: str | Path, root: str | Path | None = None) -> list[Pair]:
    """An LFW-format pairs file: a header ``folds n`` (View 2), ``n`` (View 1) or none, then the pairs.

    In View 2 each fold holds ``n`` matched then ``n`` mismatched pairs; folds are numbered from 1.
    A file without a header is one fold (fold 1) of pairs in any order.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    rows = _lines(path)
    if not rows:
        raise DatasetError(str(path), "empty pairs file")
    header = rows[0] if all(f.isdigit() for f in rows[0]) and len(rows[0]) <= 2 else None
    body = rows[1:] if header else rows
    if header and len(header) == 2:
        folds, per_side = int(header[0]), int(header[1])
        if len(body) != folds * 2 * per_side:
            raise DatasetError(str(path), f"header says {folds} folds x {2 * per_side} pairs, found {len(body)}")
        return [_pair(root, f, i // (2 * per_side) + 1, path, i + 2) for i, f in enumerate(body)]
    return [_pair(root, f, 1, path, i + 1 + bool(header)) for i, f in enumerate(body)]


@dataclass
class LFW:
    """The LFW dataset in one folder, with its official protocol files."""

    root: Path

    @classmethod
    def find(cls, data: str | Path | None = None) -> LFW:
        return cls(find_lfw(data))

    def view2_pairs(self) -> list[Pair]:
        return read_pairs(self.root / "pairs.txt", self.root)

    def view1_pairs(self, split: str = "train") -> list[Pair]:
        name = {"train": "pairsDevTrain.txt", "test": "pairsDevTest.txt"}[split]
        return read_pairs(self.root / name, self.root)

    def view2_people(self) -> dict[int, dict[str, int]]:
        """``people.txt``: fold number (1-10) -> {name: image count}."""
        path = self.root / "people.txt"
        rows = _lines(path)
        folds: dict[int, dict[str, int]] = {}
        i, fold = 1, 0
        while i < len(rows):
            count = int(rows[i][0])
            fold += 1
            folds[fold] = {name: int(n) for name, n in rows[i + 1 : i + 1 + count]}
            i += 1 + count
        if len(folds) != int(rows[0][0]):
            raise DatasetError(str(path), f"header says {rows[0][0]} folds, found {len(folds)}")
        return folds

    def view1_people(self, split: str = "train") -> dict[str, int]:
        path = self.root / {"train": "peopleDevTrain.txt", "test": "peopleDevTest.txt"}[split]
        rows = _lines(path)
        return {name: int(n) for name, n in rows[1:]}

    def identities(self) -> dict[str, list[Path]]:
        """Every person's images, sorted."""
        return {p.name: sorted(p.glob("*.jpg")) for p in sorted(self.root.iterdir()) if p.is_dir()}

    def people_of_folds(self, folds: list[int]) -> set[str]:
        people = self.view2_people()
        return {name for fold in folds for name in people[fold]}
