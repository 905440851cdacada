"""MFR2 (masked faces in the real world for recognition): an LFW-style pairs file without folds, plus
``mfr2_labels.txt`` with lines ``Name, n, masktype`` (``no-mask`` for unmasked images)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from maskface.data.lfw import read_pairs
from maskface.data.pairs import Pair
from maskface.errors import DatasetError

UNMASKED_LABELS = {"no-mask", "nomask", "no_mask", "none", "unmasked"}


def read_mask_labels(path: str | Path) -> dict[tuple[str, int], str]:
    """``(name, image number) -> mask type`` from an MFR2 labels file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(str(path), "labels file not found")
    labels: dict[tuple[str, int], str] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[1].isdigit():
            raise DatasetError(str(path), f"line {line_no}: expected 'Name, n, masktype', got {line!r}")
        labels[(parts[0], int(parts[1]))] = parts[2]
    return labels


def _key(image: Path) -> tuple[str, int]:
    name = image.parent.name
    return name, int(image.stem.rsplit("_", 1)[-1])


def read_mfr2_pairs(pairs: str | Path, root: str | Path, labels: str | Path | None = None) -> list[Pair]:
    """Pairs with their mask status (True = masked) from the labels file, when given."""
    result = read_pairs(pairs, root)
    if labels is None:
        return result
    mask_types = read_mask_labels(labels)

    def masked(image: Path) -> bool | None:
        kind = mask_types.get(_key(image))
        return None if kind is None else kind.lower() not in UNMASKED_LABELS

    return [replace(p, masked=(masked(p.a), masked(p.b))) for p in result]
