"""The face front end: detect -> landmarks -> aligned chip, with a documented policy for zero or several faces.

Policy (``FaceConfig``):

* **several faces**: ``select="largest"`` keeps the largest box (default), ``"center"`` the box nearest the image
  centre (right for centred crops such as LFW), ``"error"`` refuses the image;
* **no face**: the fallbacks named in ``fallback`` are tried in order: ``"upsample"`` searches once more at twice
  the resolution, ``"center"`` assumes the image is a face crop and uses a central box (only sensible for
  datasets of crops). Without a fallback that finds a face, :class:`~maskface.errors.NoFaceError` is raised.
  The detector that produced each face is reported (``hog``, ``hog+1``, ``center``, ``aligned``), so fallbacks
  are always counted, never silent.
* ``aligned=True`` skips detection: the input already is a chip and is only resized to the chip size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from maskface.errors import NoFaceError
from maskface.face.align import arcface_chip_matrix, dlib_chip_matrix, warp_chip
from maskface.face.detect import Detection, create_detector
from maskface.face.landmarks import LandmarkPredictor

#: Fraction of the image side that the ``center`` fallback box spans (LFW's faces fill about 45 % of the crop).
CENTER_BOX_FRACTION = 0.45


@dataclass(frozen=True)
class FaceConfig:
    """How to find and align faces; every field is a documented, configurable choice."""

    detector: Literal["hog", "mmod"] = "hog"
    upsample: int = 1
    landmarks: Literal[68, 5] = 68
    chip: Literal["dlib", "arcface"] = "dlib"
    size: int = 150
    padding: float = 0.25
    select: Literal["largest", "center", "error"] = "largest"
    fallback: tuple[str, ...] = ("upsample",)
    aligned: bool = False


@dataclass
class Face:
    """One aligned face: where it was found, its landmarks, the chip, and the chip-to-image transform."""

    detection: Detection
    landmarks: np.ndarray | None
    chip: np.ndarray
    chip_to_image: np.ndarray
    faces_found: int = 1

    @property
    def detector(self) -> str:
        return self.detection.detector


@dataclass
class FacePipeline:
    """Detect, landmark and align faces according to a :class:`FaceConfig`."""

    config: FaceConfig = field(default_factory=FaceConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        if cfg.chip == "arcface" and cfg.landmarks != 68:
            raise ValueError("the ArcFace chip needs the 68-point landmarks")
        unknown = set(cfg.fallback) - {"upsample", "center"}
        if unknown:
            raise ValueError(f"unknown fallback(s) {sorted(unknown)}; use 'upsample' and/or 'center'")
        self.detector = None if cfg.aligned else create_detector(cfg.detector, cfg.upsample)
        self.predictor = None if cfg.aligned else LandmarkPredictor(cfg.landmarks)

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces the detector finds, trying the configured fallbacks when it finds none."""
        assert self.detector is not None, "detect() is not available in aligned mode"
        found = self.detector(image)
        for fallback in self.config.fallback:
            if found:
                break
            if fallback == "upsample":
                found = self.detector(image, upsample=self.config.upsample + 1)
            elif fallback == "center":
                found = [center_box(image.shape)]
        return found

    def _select(self, detections: list[Detection], image_shape: tuple[int, ...], name: str) -> Detection:
        if not detections:
            raise NoFaceError(name, "no face found")
        if len(detections) == 1:
            return detections[0]
        if self.config.select == "error":
            raise NoFaceError(name, f"{len(detections)} faces found; expected one (select='error')")
        if self.config.select == "center":
            cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0
            return min(detections, key=lambda d: (d.center[0] - cx) ** 2 + (d.center[1] - cy) ** 2)
        return max(detections, key=lambda d: d.area)

    # -- alignment ---------------------------------------------------------------------------------------------
    def chip_matrix(self, landmarks: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.chip == "arcface":
            return arcface_chip_matrix(landmarks, cfg.size)
        return dlib_chip_matrix(landmarks, cfg.size, cfg.padding)

    def align_with_landmarks(self, image: np.ndarray, landmarks: np.ndarray, detection: Detection) -> Face:
        """Align with given landmarks (e.g. those of an unmasked original: oracle alignment)."""
        matrix = self.chip_matrix(landmarks)
        return Face(detection, landmarks, warp_chip(image, matrix, self.config.size), matrix)

    def align(self, image: np.ndarray, name: str = "<image>") -> Face:
        """The one face of an image, aligned, per the selection and fallback policy."""
        if self.config.aligned:
            return aligned_face(image, self.config.size)
        detections = self.detect(image)
        detection = self._select(detections, image.shape, name)
        landmarks = self.predictor(image, detection)
        face = self.align_with_landmarks(image, landmarks, detection)
        face.faces_found = len(detections)
        return face

    def align_all(self, image: np.ndarray) -> list[Face]:
        """Every face found in an image, each aligned."""
        if self.config.aligned:
            return [aligned_face(image, self.config.size)]
        faces = []
        detections = self.detect(image)
        for detection in detections:
            face = self.align_with_landmarks(image, self.predictor(image, detection), detection)
            face.faces_found = len(detections)
            faces.append(face)
        return faces


def center_box(shape: tuple[int, ...]) -> Detection:
    """A square box at the image centre spanning :data:`CENTER_BOX_FRACTION` of the shorter side."""
    h, w = shape[:2]
    half = CENTER_BOX_FRACTION * min(h, w) / 2.0
    return Detection((w / 2 - half, h / 2 - half, w / 2 + half, h / 2 + half), 0.0, "center")


def aligned_face(image: np.ndarray, size: int) -> Face:
    """Treat the whole image as an aligned chip, resized to ``size`` if needed."""
    h, w = image.shape[:2]
    chip = image
    if (h, w) != (size, size):
        interpolation = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
        chip = cv2.resize(image, (size, size), interpolation=interpolation)
    matrix = np.array([[w / size, 0.0, 0.0], [0.0, h / size, 0.0]])
    return Face(Detection((0.0, 0.0, float(w), float(h)), 0.0, "aligned"), None, chip, matrix)
