"""Labelled LFW photos for the mask-robust front end, to train it (:mod:`maskface.train.frontend`) and to measure
it (:mod:`maskface.eval.frontend`).

The labels come from dlib's standard HOG detector and 5-point landmark model, run on the *unmasked* original: every
face box it finds, and the central face's box and 5 points. The masked version of a photo gets a synthetic mask
placed from those 5 points, seeded per image, so the labels still say where the face is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from maskface.data.lfw import LFW
from maskface.errors import NoFaceError
from maskface.face.detect import Detection, HogDetector
from maskface.face.landmarks import LandmarkPredictor
from maskface.io.images import load_image
from maskface.masks.synth import mask_key, shared_synthesizer


@dataclass
class Labelled:
    """One training photo: its path, every face box HOG found on the original, and the central face's 5 points."""

    path: str
    boxes: list[tuple[int, int, int, int]]
    points: np.ndarray  # 5 x 2, central face
    box: tuple[int, int, int, int]

    @property
    def detection(self) -> Detection:
        """The central face's label box as a detection, for landmark models."""
        return Detection(tuple(float(v) for v in self.box), 0.0, "label")


@cache
def teachers() -> tuple[HogDetector, LandmarkPredictor]:
    """The standard models whose output on the unmasked photo is the label (one pair per process)."""
    return HogDetector(upsample=1), LandmarkPredictor(5)


def label_photo(path: str) -> Labelled:
    """Labels from the standard models on the unmasked photo (runs in a worker process)."""
    detector, predictor = teachers()
    image = load_image(path)
    found = detector(image)
    if not found:
        raise NoFaceError(path, "no face found on the unmasked original")
    h, w = image.shape[:2]
    central = min(found, key=lambda d: (d.center[0] - w / 2) ** 2 + (d.center[1] - h / 2) ** 2)
    return Labelled(path, [tuple(round(v) for v in d.box) for d in found], predictor(image, central),
                    tuple(round(v) for v in central.box))


def masked_version(sample: Labelled, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(original, masked) images of a sample; the mask is placed from the 5 labelled points."""
    image = load_image(sample.path)
    return image, shared_synthesizer(seed, None)(image, sample.points, key=mask_key(sample.path)).image


def fold_photos(lfw: LFW, folds: list[int]) -> list[str]:
    """Every photo of the people in the given View 2 folds, sorted."""
    return sorted(str(p) for name in sorted(lfw.people_of_folds(folds)) for p in (lfw.root / name).glob("*.jpg"))
