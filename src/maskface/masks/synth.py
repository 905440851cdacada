"""Mask synthesis for datasets and training: deterministic per ``(seed, image key)``, from 68 or 5 landmarks or
from an aligned chip alone.

``MaskSynthesizer(seed=7)(image, landmarks, key="Aaron/Aaron_0001.jpg")`` gives the same bytes on every run and
machine (the random stream is seeded from a SHA-256 of seed and key). Without a key, it draws from its own
generator: a new mask every time, as online synthesis in training wants.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from maskface.face.align import transform_points, umeyama_similarity
from maskface.masks.render import MaskConfig, MaskStyle, render_mask, sample_style

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


def mask_key(path: str | Path) -> str:
    """The key a dataset image's mask is drawn from: ``<person>/<file>``, the same wherever the data lies."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def mask_rng(seed: int, key: str) -> np.random.Generator:
    """A random generator that depends only on ``seed`` and ``key``, identical across runs and machines."""
    digest = hashlib.sha256(f"maskface:{seed}:{key}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


@dataclass
class MaskedFace:
    image: np.ndarray
    occlusion: np.ndarray
    style: MaskStyle


@cache
def shared_synthesizer(seed: int, mask_type: str | None) -> MaskSynthesizer:
    """One synthesizer per (seed, type) per process, for workers that mask many images by key."""
    return MaskSynthesizer(seed=seed, mask_type=mask_type)


class MaskSynthesizer:
    """Put a synthetic mask on a face; ``mask_type=None`` draws the type from ``config.types``."""

    def __init__(self, config: MaskConfig | None = None, seed: int = 0, mask_type: str | None = None):
        self.config = config or MaskConfig()
        self.seed = seed
        self.mask_type = mask_type
        self._rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | None = None, key: str | None = None,
                 rng: np.random.Generator | None = None) -> MaskedFace:
        """Mask one face. ``landmarks``: 68 or 5 points in image pixels, or None for a 150x150-style dlib chip."""
        if landmarks is None:
            landmarks = chip_landmarks(image.shape[0])
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.shape == (5, 2):
            landmarks = landmarks_from_5(landmarks)
        generator = rng if rng is not None else (mask_rng(self.seed, key) if key is not None else self._rng)
        style = sample_style(generator, self.config, self.mask_type)
        masked, occlusion = render_mask(image, landmarks, style)
        return MaskedFace(masked, occlusion, style)
