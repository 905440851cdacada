"""Mask-robust front end: a HOG detector and a 5-point landmark model trained by maskface on synthetic masked
faces, and a small classifier that tells whether an aligned face wears a mask.

The shipped files live in ``maskface/weights``: ``masked_face_detector.svm`` (dlib fHOG detector),
``masked_face_landmarks_5.dat`` (dlib shape predictor, dlib's 5-point layout: eye corners and nose base) and
``mask_classifier.json`` (logistic regression on HOG features of the lower half of a dlib chip). They are made by
``maskface train frontend``; see docs/models.md for the recipe and the measured numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import dlib
import numpy as np

from maskface.errors import ModelFileError
from maskface.face.align import dlib_chip_matrix, warp_chip
from maskface.io.files import atomic_write_text
from maskface.io.locations import shipped_weights

DETECTOR_FILE = "masked_face_detector.svm"
LANDMARKS_FILE = "masked_face_landmarks_5.dat"
CLASSIFIER_FILE = "mask_classifier.json"


def weights_path(name: str) -> Path:
    return shipped_weights(name, "reinstall maskface or run 'maskface train frontend'")


# -- the mask classifier --------------------------------------------------------------------------------------------

def gradient_histograms(grey: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """HOG-style features: per ``cell x cell`` block, a histogram of unsigned gradient orientations weighted by
    magnitude, L2-normalised per cell (OpenCV 5 dropped its HOGDescriptor from the main module)."""
    grey = grey.astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    magnitude, angle = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    index = (np.mod(angle, 180.0) / (180.0 / bins)).astype(np.int64) % bins
    h, w = grey.shape[0] // cell, grey.shape[1] // cell
    cell_id = (np.arange(h * cell)[:, None] // cell) * w + np.arange(w * cell)[None, :] // cell
    flat = (cell_id * bins + index[: h * cell, : w * cell]).ravel()
    hist = np.bincount(flat, weights=magnitude[: h * cell, : w * cell].ravel(), minlength=h * w * bins)
    hist = hist.reshape(h * w, bins)
    return (hist / (np.linalg.norm(hist, axis=1, keepdims=True) + 1e-3)).ravel()


def mask_features(chip: np.ndarray) -> np.ndarray:
    """Features of a 150x150 dlib chip for the mask classifier: HOG of the lower half plus colour statistics.

    A mask replaces the mouth and jaw's texture with smooth fabric and changes the colour of the lower face
    relative to the upper face; these features capture both, at the cost of one small HOG descriptor.
    """
    size = chip.shape[0]
    lower = chip[size // 2 : size - size // 10, size // 8 : size - size // 8]
    upper = chip[size // 5 : size // 2, size // 8 : size - size // 8]
    grey = cv2.cvtColor(cv2.resize(lower, (64, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    hog = gradient_histograms(grey)
    mean_low, std_low = cv2.meanStdDev(cv2.cvtColor(lower, cv2.COLOR_RGB2LAB))
    mean_up, std_up = cv2.meanStdDev(cv2.cvtColor(upper, cv2.COLOR_RGB2LAB))
    colour = np.concatenate([mean_low - mean_up, std_low, std_up]).ravel() / 64.0
    return np.concatenate([hog, colour]).astype(np.float32)


@dataclass(frozen=True)
class MaskClassifier:
    """Logistic regression: ``P(masked) = sigmoid(w . standardised(features) + b)``."""

    #: The chip it reads, as ``FaceConfig``'s (chip, size, padding): dlib's 150-pixel chip.
    CHIP = ("dlib", 150, 0.25)

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float = 0.5

    def probability(self, chips: np.ndarray) -> np.ndarray:
        feats = np.stack([mask_features(c) for c in np.asarray(chips).reshape(-1, *np.shape(chips)[-3:])])
        logits = ((feats - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    @classmethod
    def cut_chip(cls, image: np.ndarray, standard_landmarks: np.ndarray) -> np.ndarray:
        """The chip it reads: :attr:`CHIP` cut from the face's *standard* landmarks, as at inference."""
        _, size, padding = cls.CHIP
        return warp_chip(image, dlib_chip_matrix(standard_landmarks, size, padding), size)

    def save(self, path: Path, **extra) -> None:
        atomic_write_text(path, json.dumps({"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                                            "weights": self.weights.tolist(), "bias": self.bias,
                                            "threshold": self.threshold, **extra}) + "\n")

    @classmethod
    def load(cls, path: Path) -> MaskClassifier:
        try:
            data = json.loads(path.read_text())
            return cls(np.array(data["mean"], np.float32), np.array(data["scale"], np.float32),
                       np.array(data["weights"], np.float32), float(data["bias"]), float(data["threshold"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(str(path), f"not a mask classifier file: {exc}") from None


@cache
def shipped_mask_classifier() -> MaskClassifier:
    return MaskClassifier.load(weights_path(CLASSIFIER_FILE))


@cache
def shipped_masked_detector() -> dlib.fhog_object_detector:
    return dlib.fhog_object_detector(str(weights_path(DETECTOR_FILE)))


@dataclass(frozen=True)
class RobustModels:
    """The mask-robust front end's models, as the face pipeline uses them."""

    masked_detector: dlib.fhog_object_detector
    landmarks: dlib.shape_predictor
    classifier: MaskClassifier

    @classmethod
    def shipped(cls) -> RobustModels:
        return cls(shipped_masked_detector(), shipped_masked_landmarks(), shipped_mask_classifier())


@cache
def shipped_masked_landmarks() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(weights_path(LANDMARKS_FILE)))
