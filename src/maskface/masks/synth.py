"""Mask synthesis for datasets and training: deterministic per ``(seed, image key)``, from 68 or 5 landmarks or
from an aligned chip alone.

``MaskSynthesizer(seed=7)(image, landmarks, key="Aaron/Aaron_0001.jpg")`` gives the same bytes on every run and
machine (the random stream is seeded from a SHA-256 of seed and key). Without a key, it draws from its own
generator: a new mask every time, as online synthesis in training wants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from maskface.face.geometry import chip_landmarks, landmarks_from_5
from maskface.masks.render import MaskConfig, MaskStyle, render_mask, sample_style


def mask_key(path: str | Path) -> str:
    """The key a dataset image's mask is drawn from: ``<person>/<file>``, the same wherever the data lies."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def mask_rng(seed: int, key: str) -> np.random.Generator:
    """A random generator that depends only on ``seed`` and ``key``, identical across runs and machines. A key made
    from a file name with bytes that are not UTF-8 (kept by Python as lone surrogates) hashes those bytes."""
    digest = hashlib.sha256(f"maskface:{seed}:{key}".encode("utf-8", "surrogateescape")).digest()
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
