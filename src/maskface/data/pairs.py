"""Verification pairs as data: two image paths, the truth, and the fold they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int = 0
    #: For protocols that label masks (MFR2): whether each side wears a mask, else None.
    masked: tuple[bool | None, bool | None] = (None, None)
