"""Make ``docs/img/masks.png``: every mask type on real LFW faces at several poses (rows: frontal, turned left,
turned right, tilted, and one more frontal face; columns: the photo, then one mask of each type).

Run: ``python tools/make_mask_sheet.py --data ../shared/data``. Poses are picked from LFW View 2 folds 1-2 by the
nose-tip offset (yaw) and the eye line angle (roll) of dlib's 68 landmarks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from maskface.data.lfw import LFW
from maskface.errors import NoFaceError
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.images import load_image, save_image
from maskface.masks.render import MASK_TYPES
from maskface.masks.synth import MaskSynthesizer

TILE = 180


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw proxy in [-1, 1], roll in degrees) from 68 landmarks."""
    jaw_mid = (landmarks[0] + landmarks[16]) / 2
    half_width = np.linalg.norm(landmarks[16] - landmarks[0]) / 2
    eyes = landmarks[42:48].mean(0) - landmarks[36:42].mean(0)
    return float((landmarks[30, 0] - jaw_mid[0]) / half_width), float(np.degrees(np.arctan2(eyes[1], eyes[0])))


def crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    left, top, right, bottom = box
    cx, cy, half = (left + right) / 2, (top + bottom) / 2 + 0.1 * (bottom - top), 0.95 * (right - left)
    matrix = np.array([[TILE / (2 * half), 0, TILE / 2 - cx * TILE / (2 * half)],
                       [0, TILE / (2 * half), TILE / 2 - cy * TILE / (2 * half)]])
    return cv2.warpAffine(image, matrix, (TILE, TILE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs/img/masks.png"))
    args = parser.parse_args()
    lfw = LFW.find(args.data)
    pipeline = FacePipeline(FaceConfig(detector="hog", select="center", fallback=()))
    candidates = []
    for name in sorted(lfw.people_of_folds([1, 2]))[:400]:
        path = lfw.root / name / f"{name}_0001.jpg"
        image = load_image(path)
        try:
            face = pipeline.align(image, str(path))
        except NoFaceError:
            continue
        candidates.append((path, image, face, *pose(face.landmarks)))
    picks = [min(candidates, key=lambda c: abs(c[3]) + abs(c[4]) / 30),  # frontal
             min(candidates, key=lambda c: c[3]),  # nose far to the image left
             max(candidates, key=lambda c: c[3]),  # nose far to the image right
             max(candidates, key=lambda c: abs(c[4])),  # strongest roll
             sorted(candidates, key=lambda c: abs(c[3]))[len(candidates) // 7]]
    rows = []
    for i, (path, image, face, _, _) in enumerate(picks):
        tiles = [crop(image, face.detection.box)]
        for kind in MASK_TYPES:
            masked = MaskSynthesizer(seed=i, mask_type=kind)(image, face.landmarks, key=f"{path.parent.name}/"
                                                                                    f"{path.name}")
            tiles.append(crop(masked.image, face.detection.box))
        rows.append(np.hstack(tiles))
    header = np.full((28, rows[0].shape[1], 3), 255, np.uint8)
    for j, title in enumerate(["photo", *MASK_TYPES]):
        cv2.putText(header, title, (j * TILE + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    save_image(np.vstack([header, *rows]), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
