"""Face detectors behind one small interface: YuNet (default; boxes and five landmarks), RetinaFace MobileNet-0.25
(high recall, slow), dlib's HOG (fast, no landmarks) and dlib's MMOD CNN (slow).

A detector is called as ``detector(rgb_image, upsample=None) -> list[Detection]``; ``upsample`` above the
configured value searches at twice the resolution per step (the pipeline's ``upsample`` fallback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import dlib
import numpy as np

from maskface.io.locations import MMOD, dlib_model_path

#: Photos whose long side exceeds this are searched at reduced size (boxes are scaled back); HOG's cost grows with
#: the pixel count, and faces this small relative to the photo are rarely wanted.
DETECT_MAX_SIDE = 1600


@dataclass(frozen=True)
class Detection:
    """A face box in image pixels (left, top, right, bottom), the detector's score, and which detector found it.

    ``points``: the five landmarks of detectors that give them (YuNet, RetinaFace), a 5x2 array in image pixels in
    :data:`maskface.face.align.FIVE_POINTS` order: image-left eye, image-right eye, nose tip, image-left mouth
    corner, image-right mouth corner (the ArcFace template's order).
    """

    box: tuple[float, float, float, float]
    score: float
    detector: str
    points: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return max(0.0, right - left) * max(0.0, bottom - top)

    @property
    def center(self) -> tuple[float, float]:
        left, top, right, bottom = self.box
        return (left + right) / 2.0, (top + bottom) / 2.0

    @classmethod
    def from_dlib(cls, rect: dlib.rectangle, factor: float, score: float, detector: str) -> Detection:
        """A dlib rectangle found on an image shrunk by ``factor``, back in original pixels."""
        return cls((rect.left() / factor, rect.top() / factor, rect.right() / factor, rect.bottom() / factor),
                   float(score), detector)

    def to_dlib(self) -> dlib.rectangle:
        left, top, right, bottom = (round(v) for v in self.box)
        return dlib.rectangle(left, top, right, bottom)


def shrink_for_detection(image: np.ndarray) -> tuple[np.ndarray, float]:
    long_side = max(image.shape[:2])
    if long_side <= DETECT_MAX_SIDE:
        return image, 1.0
    factor = DETECT_MAX_SIDE / long_side
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


class HogDetector:
    """dlib's frontal HOG + linear SVM detector; ``upsample`` doubles the image that many times first."""

    name = "hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.0):
        self.upsample = upsample
        self.threshold = threshold
        self.dlib_detector = dlib.get_frontal_face_detector()

    def __call__(self, image: np.ndarray, upsample: int | None = None) -> list[Detection]:
        small, factor = shrink_for_detection(image)
        times = self.upsample if upsample is None else upsample
        rects, scores, _ = self.dlib_detector.run(small, times, self.threshold)
        name = self.name if times == self.upsample else f"{self.name}+{times - self.upsample}"
        return [Detection.from_dlib(r, factor, s, name) for r, s in zip(rects, scores)]


class MmodDetector:
    """dlib's MMOD CNN detector: more robust to pose, but 6-30 s per photo on a 2-core CPU."""

    name = "mmod"

    def __init__(self, upsample: int = 1):
        self.upsample = upsample
        self._detector = dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD)))

    def __call__(self, image: np.ndarray, upsample: int | None = None) -> list[Detection]:
        small, factor = shrink_for_detection(image)
        times = self.upsample if upsample is None else upsample
        found = self._detector(small, times)
        return [Detection.from_dlib(d.rect, factor, d.confidence, self.name) for d in found]


def _yunet(**options):
    from maskface.face.yunet import YuNetDetector

    return YuNetDetector(**options)


def _retinaface(**options):
    from maskface.face.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(**options)


#: Detector name -> constructor (YuNet and RetinaFace are imported on first use: RetinaFace needs torch).
DETECTORS = {"yunet": _yunet, "retinaface": _retinaface, "hog": HogDetector, "mmod": MmodDetector}

#: Detectors whose detections carry five landmarks (``Detection.points``): no landmark model runs after them.
LANDMARK_DETECTORS = ("yunet", "retinaface")


def create_detector(name: str, upsample: int = 1, threshold: float | None = None):
    """A detector by name; ``threshold`` overrides its default score threshold (YuNet, RetinaFace, HOG)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    options = {"upsample": upsample}
    if threshold is not None:
        if name == "mmod":
            raise ValueError("the mmod detector has no score threshold option")
        options["threshold"] = threshold
    return DETECTORS[name](**options)
