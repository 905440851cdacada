"""The face front end: detect -> landmarks -> aligned chip, with a documented policy for zero or several faces.

Detectors (``FaceConfig.detector``): ``"yunet"`` (default) and ``"retinaface"`` give each face's five points
themselves, and every chip geometry is cut from those five points; ``"hog"`` and ``"mmod"`` give boxes, and dlib's
68- or 5-point landmark model places the points.

Policy (``FaceConfig``):

* **several faces**: ``select="largest"`` keeps the largest box (default), ``"center"`` the box nearest the image
  centre (right for centred crops such as LFW), ``"error"`` refuses the image;
* **no face**: the fallbacks named in ``fallback`` are tried in order: ``"upsample"`` searches once more at twice
  the resolution, ``"center"`` assumes the image is a face crop and uses a central box (only sensible for
  datasets of crops). Without a fallback that finds a face, :class:`~maskface.errors.NoFaceError` is raised.
  The detector that produced each face is reported (``yunet``, ``yunet+1``, ``hog``, ``hog+1``, ``center``,
  ``aligned``), so fallbacks are always counted, never silent.
* ``aligned=True`` skips detection: the input already is a chip and is only resized to the chip size.
* **masks** (``mask_robust=True``, default): every face's dlib chip goes through a mask classifier
  (``Face.mask_probability``). YuNet and RetinaFace find masked faces themselves and keep their own points. With
  HOG or MMOD, a cascade: the standard detector runs first; maskface's own detector,
  trained on masked faces (``masked-hog``), scans the photo when the standard one leaves its centre, where the
  subject of a photo stands, without a face (``masked_scan="center"``, default: an unmasked subject costs no extra
  scan), or on every photo (``masked_scan="always"``: both detectors scan one shared HOG pyramid, which finds a
  masked face beside an unmasked one anywhere, for crowds, at a small cost on every photo). Every face's dlib chip
  goes through a mask classifier, and a face found by the masked-face detector or judged masked gets its 5 points
  from maskface's masked-face landmark model instead of the standard one. ``Face.mask_probability`` reports the
  classifier's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import cv2
import dlib
import numpy as np

from maskface.errors import NoFaceError
from maskface.face.align import arcface_points, dlib_chip_matrix, five_point_chip_matrix, shape_from_five, warp_chip
from maskface.face.detect import (
    LANDMARK_DETECTORS,
    Detection,
    HogDetector,
    create_detector,
    shrink_for_detection,
)
from maskface.face.geometry import FIVE_TO_68
from maskface.face.landmarks import LandmarkPredictor

if TYPE_CHECKING:
    from maskface.face.robust import RobustModels

#: Bump whenever a change alters which faces are found or how they are aligned: cached evaluation embeddings are
#: keyed by it (2: both detectors scan one shared HOG pyramid; 3: the masked-face detector retrained at C = 20; 4: a
#: 64-pixel, low-rank masked-face detector, which costs the shared scan a quarter as much). Cutting chips with dlib's
#: own ``extract_image_chip`` instead of a NumPy copy of its sampler changed no chip of LFW or the real masked photos
#: (faces more than twice the chip's size now go through dlib's pyramid, as ``dlib.get_face_chip``'s do), so it kept
#: version 4. 5: the masked-face detector scans only photos whose centre the standard detector leaves without a face.
#: 6: YuNet is the default detector and landmarker; chips of every geometry are cut from its five points.
PIPELINE_VERSION = 6

#: What each detector of a mask-robust pass is called in ``Detection.detector`` (a fallback pass adds ``+1``).
DETECTOR_NAMES = ("hog", "masked-hog")

#: Fraction of the image side that the ``center`` fallback box spans (LFW's faces fill about 45 % of the crop).
CENTER_BOX_FRACTION = 0.45


@dataclass(frozen=True)
class FaceConfig:
    """How to find and align faces; every field is a documented, configurable choice."""

    #: ``"yunet"`` and ``"retinaface"`` also give five points; ``"hog"`` and ``"mmod"`` need a landmark model.
    detector: Literal["yunet", "retinaface", "hog", "mmod"] = "yunet"
    #: Score threshold of the detector; None keeps its default (YuNet's chosen for masked faces, see
    #: ``maskface.face.yunet.YUNET_THRESHOLD``; RetinaFace 0.6; HOG 0). MMOD has none.
    detector_threshold: float | None = None
    upsample: int = 1
    #: dlib's landmark model after HOG or MMOD (and for ``center`` fallback boxes).
    landmarks: Literal[68, 5] = 68
    chip: Literal["dlib", "arcface", "omz"] = "dlib"
    size: int = 150
    padding: float = 0.25
    select: Literal["largest", "center", "error"] = "largest"
    fallback: tuple[str, ...] = ("upsample",)
    aligned: bool = False
    mask_robust: bool = True
    #: Score threshold of the masked-face detector. Its boxes are kept only where no HOG box covers them, so it
    #: may be lower than HOG's 0; chosen on LFW photos the front end never trained on, against false fires on
    #: photos whose faces were removed (tools/select_masked_detector.py, docs/models.md).
    masked_threshold: float = -0.5
    #: When the masked-face detector scans: ``"center"`` when no standard face covers the photo's centre (unmasked
    #: subjects cost nothing), ``"always"`` on every photo, in one pyramid shared with the standard detector (also
    #: finds masked faces beside unmasked ones, for crowds; +7 % detection time on every photo). docs/pipeline.md.
    masked_scan: Literal["center", "always"] = "center"


@dataclass
class Face:
    """One aligned face: where it was found, its landmarks, the chip, and the chip-to-image transform (the arrays
    are left out of its repr, which stays one readable line)."""

    detection: Detection
    landmarks: np.ndarray | None = field(repr=False)
    chip: np.ndarray = field(repr=False)
    chip_to_image: np.ndarray = field(repr=False)
    faces_found: int = 1
    mask_probability: float | None = None

    @property
    def detector(self) -> str:
        return self.detection.detector

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Where the face is in the image: ``(left, top, right, bottom)`` in pixels."""
        return self.detection.box

    @property
    def five_points(self) -> np.ndarray | None:
        """The face's 5 points in image pixels (``5 x 2``, x then y), in dlib's 5-point layout: the outer and inner
        corner of the eye on the image's right, the same of the eye on its left, the base of the nose. Every face
        has them, masked or not (a mask hides the mouth); taken from the 68 points when those were predicted. None
        for an input given as an aligned chip."""
        if self.landmarks is None:
            return None
        return self.landmarks[list(FIVE_TO_68)] if len(self.landmarks) == 68 else self.landmarks

    @property
    def masked(self) -> bool | None:
        """Whether the face wears a mask, by the mask classifier (None when it did not run)."""
        if self.mask_probability is None:
            return None
        from maskface.face.robust import shipped_mask_classifier

        return self.mask_probability >= shipped_mask_classifier().threshold


@dataclass
class FacePipeline:
    """Detect, landmark and align faces according to a :class:`FaceConfig`."""

    config: FaceConfig = field(default_factory=FaceConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.five_point = cfg.detector in LANDMARK_DETECTORS
        if cfg.chip != "dlib" and cfg.landmarks != 68 and not self.five_point:
            raise ValueError(f"the {cfg.chip} chip needs five points or dlib's 68 landmarks, not its 5 (eye corners)")
        if cfg.masked_scan not in ("center", "always"):
            raise ValueError(f"unknown masked_scan {cfg.masked_scan!r}; use 'center' or 'always'")
        unknown = set(cfg.fallback) - {"upsample", "center"}
        if unknown:
            raise ValueError(f"unknown fallback(s) {sorted(unknown)}; use 'upsample' and/or 'center'")
        self.detector = None if cfg.aligned else create_detector(cfg.detector, cfg.upsample, cfg.detector_threshold)
        self._predictor: LandmarkPredictor | None = None
        self.robust: RobustModels | None = None
        if cfg.mask_robust and not cfg.aligned:
            from maskface.face.robust import RobustModels

            self.robust = RobustModels.shipped()

    # -- detection ---------------------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces the detectors find, trying the configured fallbacks when they find none."""
        assert self.detector is not None, "detect() is not available in aligned mode"
        found = self.search_pass(image, self.config.upsample, self.config.masked_threshold)
        for fallback in self.config.fallback:
            if found:
                break
            if fallback == "upsample":
                found = self.search_pass(image, self.config.upsample + 1, self.config.masked_threshold)
            elif fallback == "center":
                found = [center_box(image.shape)]
        return found

    @property
    def predictor(self) -> LandmarkPredictor:
        """dlib's landmark model of ``config.landmarks``, loaded on first use (five-point detectors need it only for
        ``center`` fallback boxes)."""
        if self._predictor is None:
            self._predictor = LandmarkPredictor(self.config.landmarks)
        return self._predictor

    def search_pass(self, image: np.ndarray, upsample: int, masked_threshold: float) -> list[Detection]:
        """One detection pass. With HOG or MMOD and the mask-robust models, the masked-face detector adds its faces
        where no standard box covers them (:func:`merge_detections`): with ``masked_scan="always"`` and HOG, both
        detectors scan one shared HOG pyramid (dlib's ``run_multiple``); otherwise it scans alone, and with
        ``"center"`` only when no standard face covers the photo's centre."""
        if self.robust is None or self.five_point:
            return self.detector(image, upsample=upsample)
        if self.config.masked_scan == "always" and isinstance(self.detector, HogDetector):
            thresholds = (self.detector.threshold, masked_threshold)
            return merge_detections(self.scan(image, upsample, min(thresholds)), thresholds)
        standard = self.detector(image, upsample=upsample)
        if not self.needs_masked_scan(standard, image.shape):
            return standard
        return merge_detections(standard + self._masked_only(image, upsample, masked_threshold),
                                (-np.inf, masked_threshold))

    def needs_masked_scan(self, standard: list[Detection], shape: tuple[int, ...]) -> bool:
        """Whether the masked-face detector scans a photo in which the standard detector found ``standard``: on
        every photo with ``masked_scan="always"``, otherwise when none of those faces covers the photo's centre."""
        return self.config.masked_scan == "always" or not covers_center(standard, shape)

    def scan(self, image: np.ndarray, upsample: int, floor: float) -> list[Detection]:
        """Every box the standard and the masked-face detector score at or above ``floor``, in one shared HOG
        pyramid (dlib's non-maximum suppression runs within each detector's boxes, never across the two)."""
        small, factor = shrink_for_detection(image)
        rects, scores, which = dlib.fhog_object_detector.run_multiple(
            [self.detector.dlib_detector, self.robust.masked_detector], small, upsample, floor)
        return [Detection.from_dlib(rect, factor, score, self._pass_name(index, upsample))
                for rect, score, index in zip(rects, scores, which)]

    def _masked_only(self, image: np.ndarray, upsample: int, masked_threshold: float) -> list[Detection]:
        small, factor = shrink_for_detection(image)
        rects, scores, _ = self.robust.masked_detector.run(small, upsample, masked_threshold)
        return [Detection.from_dlib(r, factor, s, self._pass_name(1, upsample)) for r, s in zip(rects, scores)]

    def _pass_name(self, index: int, upsample: int) -> str:
        """``DETECTOR_NAMES[index]``, with ``+1`` for a fallback pass at twice the configured resolution."""
        extra = upsample - self.config.upsample
        return f"{DETECTOR_NAMES[index]}+{extra}" if extra else DETECTOR_NAMES[index]

    def face(self, image: np.ndarray, detection: Detection, faces_found: int = 1) -> Face:
        """Landmarks and the aligned chip of one detected face.

        A detection with five points (YuNet, RetinaFace) is aligned on them, and its ``Face.landmarks`` are the
        68-point shape through them (:func:`~maskface.face.align.shape_from_five`); other boxes get dlib's landmarks.
        With the mask-robust models, the face's dlib chip goes through the mask classifier; with HOG or MMOD, faces
        from the masked-face detector, and faces it finds masked, get the 5 points of the masked-face landmark model
        instead of the standard model's. The classifier's chip is the output chip when the configuration asks for
        dlib's 150-pixel chip (the default), so the classifier costs only its features.
        """
        if detection.points is not None:
            points = shape_from_five(detection.points)
        else:
            points = self.predictor(image, detection)
            if self.five_point and len(points) == 5:  # dlib's 5 (eye corners, nose base) would read as five points
                points = _landmarks_from_dlib5(points)
        face = self.align_with_landmarks(image, points, detection)
        if self.robust is not None:
            face = self._mask_robust(image, detection, points, face)
        face.faces_found = faces_found
        return face

    def _mask_robust(self, image: np.ndarray, detection: Detection, points: np.ndarray, face: Face) -> Face:
        """The face with its mask probability, re-aligned on the masked-face landmarks when it is masked."""
        classifier = self.robust.classifier
        same_chip = (self.config.chip, self.config.size, self.config.padding) == classifier.CHIP
        if same_chip:
            chip = face.chip
        elif self.five_point:
            chip = warp_chip(image, self.chip_matrix(points, *classifier.CHIP), classifier.CHIP[1])
        else:
            chip = classifier.cut_chip(image, points)
        probability = float(classifier.probability(chip)[0])
        if not self.five_point and (detection.detector.startswith("masked") or probability >= classifier.threshold):
            shape = self.robust.landmarks(image, detection.to_dlib())
            masked_points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            face = self.align_with_landmarks(image, masked_points, detection)
        face.mask_probability = probability
        return face

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
    def chip_matrix(self, landmarks: np.ndarray, chip: str | None = None, size: int | None = None,
                    padding: float | None = None) -> np.ndarray:
        """Chip-to-image matrix of the configured chip (or the one given) for a face's landmarks.

        With a five-point detector, every geometry is a five-point fit: to the points themselves, or to the five of
        68 landmarks. Otherwise dlib's chip comes from dlib's own alignment of its 68 or 5 landmarks, and the
        five-point geometries from the five of the 68 landmarks.
        """
        cfg = self.config
        chip, size = chip or cfg.chip, size or cfg.size
        padding = cfg.padding if padding is None else padding
        if chip == "dlib" and not self.five_point:
            return dlib_chip_matrix(landmarks, size, padding)
        if len(landmarks) == 5 and not self.five_point:
            landmarks = _landmarks_from_dlib5(landmarks)
        five = landmarks if len(landmarks) == 5 else arcface_points(landmarks)
        return five_point_chip_matrix(five, chip, size, padding)

    def align_with_landmarks(self, image: np.ndarray, landmarks: np.ndarray, detection: Detection) -> Face:
        """Align with given landmarks (e.g. those of an unmasked original: oracle alignment)."""
        matrix = self.chip_matrix(landmarks)
        return Face(detection, landmarks, warp_chip(image, matrix, self.config.size), matrix)

    def align(self, image: np.ndarray, name: str = "<image>") -> Face:
        """The one face of an image, aligned, per the selection and fallback policy."""
        if self.config.aligned:
            return aligned_face(image, self.config.size)
        detections = self.detect(image)
        return self.face(image, self._select(detections, image.shape, name), len(detections))

    def align_all(self, image: np.ndarray) -> list[Face]:
        """Every face found in an image, each aligned."""
        if self.config.aligned:
            return [aligned_face(image, self.config.size)]
        detections = self.detect(image)
        return [self.face(image, detection, len(detections)) for detection in detections]


def _landmarks_from_dlib5(points: np.ndarray) -> np.ndarray:
    """68 landmarks from dlib's 5 points (eye corners, nose base): the canonical shape fitted to them."""
    from maskface.face.geometry import landmarks_from_5

    return landmarks_from_5(points)


def merge_detections(detections: list[Detection], thresholds: tuple[float, float]) -> list[Detection]:
    """The boxes of a mask-robust pass that are kept: the standard detector's boxes at or above its threshold first,
    then the masked-face detector's at or above its own where no standard box covers the same face."""
    masked = [d.detector.startswith(DETECTOR_NAMES[1]) for d in detections]
    standard = [d for d, m in zip(detections, masked) if not m and d.score >= thresholds[0]]
    return standard + [d for d, m in zip(detections, masked)
                       if m and d.score >= thresholds[1] and not any(_overlaps(d, k) for k in standard)]


def covers_center(detections: list[Detection], shape: tuple[int, ...]) -> bool:
    """Whether some box contains the photo's centre, where the subject of a portrait, a crop or an ID photo is."""
    cx, cy = shape[1] / 2.0, shape[0] / 2.0
    return any(d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3] for d in detections)


def _overlaps(a: Detection, b: Detection) -> bool:
    """Whether two boxes are the same face: either centre lies inside the other box."""
    (ax, ay), (bx, by) = a.center, b.center
    return (b.box[0] <= ax <= b.box[2] and b.box[1] <= ay <= b.box[3]) or (
        a.box[0] <= bx <= a.box[2] and a.box[1] <= by <= a.box[3])


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
