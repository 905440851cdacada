"""The mean 68-point face and what it gives: 68 landmarks for a face known by dlib's 5 points, or for an aligned
chip known by nothing but its geometry.

The ArcFace chip and the mask renderer both want 68 points; the face front end and the mask synthesis share this
shape (``canonical68.json``, made by tools/make_canonical68.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from maskface.face.align import transform_points, umeyama_similarity

#: dlib 5-point landmark i corresponds to iBUG 68-point index FIVE_TO_68[i] (eye corners, nose base).
FIVE_TO_68 = (45, 42, 36, 39, 33)


@cache
def canonical_shape() -> np.ndarray:
    """The mean 68-point face in dlib-chip coordinates divided by the chip side (see tools/make_canonical68.py)."""
    data = json.loads((Path(__file__).parent / "canonical68.json").read_text())
    return np.array(data["points"], np.float64)


def landmarks_from_5(points5: np.ndarray) -> np.ndarray:
    """68 landmarks for a face known by dlib's 5 points: the canonical shape fitted by a similarity transform."""
    canon = canonical_shape()
    matrix = umeyama_similarity(canon[list(FIVE_TO_68)], np.asarray(points5, np.float64))
    return transform_points(canon, matrix)


def chip_landmarks(size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Canonical 68 landmarks of a dlib chip of this size and padding (for aligned chips without landmarks)."""
    base = canonical_shape()  # for padding 0.25; rescale about the centre for another padding
    factor = (1 + 2 * 0.25) / (1 + 2 * padding)
    return ((base - 0.5) * factor + 0.5) * size
