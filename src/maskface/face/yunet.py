"""YuNet (OpenCV Zoo, MIT): a 230 kB face detector that also gives five landmarks, run by OpenCV's
``cv2.FaceDetectorYN``. maskface's default detector: it finds masked faces and tight crops that dlib's HOG misses,
in a few milliseconds a photo.

The shipped file is ``maskface/weights/yunet/`` (origin, sha256 and licence beside it). YuNet's five points come
in image order (image-left eye first; checked on LFW photos against dlib's 68 landmarks), which is maskface's
:data:`~maskface.face.align.FIVE_POINTS` order, so they are used as they are.
"""

from __future__ import annotations

import cv2
import numpy as np

from maskface.face.detect import DETECT_MAX_SIDE, Detection
from maskface.io.locations import shipped_weights

YUNET_FILE = "yunet/face_detection_yunet_2026may.onnx"

#: Default score threshold, chosen for masked faces on held-out synthetic masked LFW against false fires on
#: photos whose faces were removed (tools/select_yunet_threshold.py, docs/results/yunet-threshold.md). Masked
#: faces score lower than bare ones, so the OpenCV Zoo demo's 0.9 would drop most of them.
YUNET_THRESHOLD = 0.65

#: Intersection-over-union above which the lower-scored of two boxes is suppressed (the zoo's default).
YUNET_NMS_THRESHOLD = 0.3

#: Images whose shorter side is below this are enlarged to it first (faces in very small photos are found then).
MIN_SIDE = 128


def detection_scale(shape: tuple[int, ...], factor: float = 1.0) -> float:
    """The factor an image is resized by before detection: ``factor``, raised so the shorter side reaches
    :data:`MIN_SIDE` and lowered so the longer side stays within ``DETECT_MAX_SIDE``."""
    short, long = min(shape[:2]), max(shape[:2])
    scale = max(factor, MIN_SIDE / short)
    return min(scale, DETECT_MAX_SIDE / long)


class YuNetDetector:
    """Faces with boxes, scores and five landmarks (:attr:`Detection.points`) from YuNet.

    Input: an RGB ``H x W x 3`` uint8 image (converted to the BGR the network was trained on). The network is
    fully convolutional, so each image is searched at its own size (see :func:`detection_scale`); each
    ``upsample`` step above the configured one doubles the size, for the pipeline's fallback pass.
    """

    name = "yunet"

    def __init__(self, upsample: int = 1, threshold: float = YUNET_THRESHOLD,
                 nms_threshold: float = YUNET_NMS_THRESHOLD):
        self.upsample = upsample
        self.threshold = threshold
        path = shipped_weights(YUNET_FILE)
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_ERROR)  # OpenCV 5 warns that its new graph engine ignores the target setting
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), threshold, nms_threshold, 5000)
        finally:
            log.setLogLevel(level)

    def __call__(self, image: np.ndarray, upsample: int | None = None) -> list[Detection]:
        extra = 0 if upsample is None else upsample - self.upsample
        scale = detection_scale(image.shape, 2.0**extra)
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        if scale != 1.0:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            scale_x, scale_y = size[0] / image.shape[1], size[1] / image.shape[0]
        else:
            scale_x = scale_y = 1.0
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        name = f"{self.name}+{extra}" if extra else self.name
        found = []
        for row in rows.astype(np.float64):
            x, y, w, h = row[:4]
            points = row[4:14].reshape(5, 2) / [scale_x, scale_y]
            box = (x / scale_x, y / scale_y, (x + w) / scale_x, (y + h) / scale_y)
            found.append(Detection(box, float(row[14]), name, points))
        return found
