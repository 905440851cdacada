"""Facial landmarks from dlib's shape predictors: 68 points (iBUG 300-W, non-commercial) or 5 points (CC0)."""

from __future__ import annotations

import dlib
import numpy as np

from maskface.face.detect import Detection
from maskface.io.locations import SHAPE_5, SHAPE_68, dlib_model_path

LANDMARK_FILES = {68: SHAPE_68, 5: SHAPE_5}


class LandmarkPredictor:
    """Predict ``(N, 2)`` float landmarks in image pixels for a detected face box."""

    def __init__(self, points: int = 68):
        if points not in LANDMARK_FILES:
            raise ValueError(f"landmark models exist for 68 or 5 points, not {points}")
        self.points = points
        self._predictor = dlib.shape_predictor(str(dlib_model_path(LANDMARK_FILES[points])))

    def __call__(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        shape = self._predictor(image, detection.to_dlib())
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
