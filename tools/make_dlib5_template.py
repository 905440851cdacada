"""Make and check ``DLIB_TEMPLATE`` (maskface/face/align.py): five points for dlib's 150x150 chip (padding 0.25), so
that a five-point similarity fit reproduces the chip dlib cuts from its 68 landmarks.

Candidates, each also made mirror-symmetric:

* **canonical**: the five points (eye centres, nose tip, mouth corners) of maskface's canonical 68-point shape, the
  mean of dlib's 68 landmarks in dlib chips;
* **yunet** / **retinaface**: where that detector's five points fall, on average, in dlib's own chips.

The means are taken on one photo per person of LFW View 2 folds 1-5; the check runs on folds 6-10: each photo's
dlib chip from HOG + 68 landmarks (``dlib.get_face_chip``'s) against the chip cut from a detector's five points with
each template: the mean absolute pixel difference (0-255, RGB) and how far the chip's corners move (chip pixels).
dlib's own 5-point landmark model, aligned by dlib, is the baseline.

Usage: ``python tools/make_dlib5_template.py --data ../shared/data --out docs/results/dlib5-template.md``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maskface.data.lfw import LFW
from maskface.errors import NoFaceError
from maskface.face.align import (
    DLIB_TEMPLATE,
    arcface_points,
    dlib_chip_matrix,
    invert_affine,
    transform_points,
    umeyama_similarity,
    warp_chip,
)
from maskface.face.detect import create_detector
from maskface.face.geometry import canonical_shape
from maskface.face.landmarks import LandmarkPredictor
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.files import atomic_write_text
from maskface.io.images import load_image

DETECTORS = ("yunet", "retinaface")
SIZE = 150


def first_photos(lfw: LFW, folds: list[int], limit: int) -> list[Path]:
    return [p for name in sorted(lfw.people_of_folds(folds)) for p in sorted((lfw.root / name).glob("*.jpg"))[:1]][
        :limit]


def measure_photo(path: Path, reference: FacePipeline, detectors: dict, five: LandmarkPredictor) -> dict | None:
    """The photo, dlib's chip of its central face and that face's five points from each detector (None when a
    detector misses it)."""
    image = load_image(path)
    try:
        face = reference.align(image, str(path))
    except NoFaceError:
        return None
    centre = np.array(face.detection.center)
    sample = {"image": image, "face": face, "dlib5": five(image, face.detection)}
    for name, detector in detectors.items():
        found = detector(image)
        if not found:
            return None
        sample[name] = min(found, key=lambda d: np.linalg.norm(np.array(d.center) - centre)).points
    return sample


def mirror_symmetric(template: np.ndarray) -> np.ndarray:
    mirrored = template[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = (SIZE - 1) - mirrored[:, 0]
    return (template + mirrored) / 2


def corner_shift(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean distance, in the reference chip's pixels, between where the two chip-to-image matrices put the chip's
    corners."""
    corners = np.array([[0, 0], [SIZE - 1, 0], [0, SIZE - 1], [SIZE - 1, SIZE - 1]], np.float64)
    moved = transform_points(transform_points(corners, other), invert_affine(reference))
    return float(np.linalg.norm(moved - corners, axis=1).mean())


def compare(samples: list[dict], points_of, template: np.ndarray | None) -> tuple[float, float]:
    """Mean absolute pixel difference and corner shift of chips cut from ``points_of(sample)`` against dlib's."""
    diffs, shifts = [], []
    for sample in samples:
        points = points_of(sample)
        if template is None:
            matrix = dlib_chip_matrix(points, SIZE, 0.25)
        else:
            matrix = invert_affine(umeyama_similarity(points, template))
        chip = warp_chip(sample["image"], matrix, SIZE)
        diffs.append(np.abs(chip.astype(np.float64) - sample["face"].chip).mean())
        shifts.append(corner_shift(sample["face"].chip_to_image, matrix))
    return float(np.mean(diffs)), float(np.mean(shifts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--photos", type=int, default=500, help="photos for the means and for the check, each")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    lfw = LFW.find(args.data)
    reference = FacePipeline(FaceConfig(detector="hog", select="center", fallback=(), mask_robust=False))
    detectors = {name: create_detector(name, threshold=0.5) for name in DETECTORS}
    five = LandmarkPredictor(5)

    def samples(folds: list[int]) -> list[dict]:
        found = (measure_photo(p, reference, detectors, five) for p in first_photos(lfw, folds, args.photos))
        return [s for s in found if s is not None]

    train, test = samples([1, 2, 3, 4, 5]), samples([6, 7, 8, 9, 10])
    canon = canonical_shape()
    templates = {"canonical": arcface_points(canon) * SIZE}
    for name in DETECTORS:
        in_chips = [transform_points(s[name], invert_affine(s["face"].chip_to_image)) for s in train]
        templates[name] = np.mean(in_chips, axis=0)
    templates.update({f"{k}, symmetric": mirror_symmetric(v) for k, v in list(templates.items())})
    templates["shipped DLIB_TEMPLATE"] = DLIB_TEMPLATE

    lines = ["# A five-point template for dlib's chip\n", f"`python tools/make_dlib5_template.py --data {args.data} "
             f"--photos {args.photos} --out {args.out}`\n",
             f"Templates from {len(train)} photos of LFW View 2 folds 1-5 (one per person), checked on {len(test)} "
             "of folds 6-10 against dlib's own 150-pixel chip (HOG box, 68 landmarks, padding 0.25). Mean absolute "
             "pixel difference over the chip (0-255) and mean shift of the chip's corners (chip pixels).\n",
             "| template | points (150-pixel chip) | YuNet: pixel diff | YuNet: corner shift "
             "| RetinaFace: pixel diff | RetinaFace: corner shift |", "|---|---|---:|---:|---:|---:|"]
    for name, template in templates.items():
        cells = []
        for detector in DETECTORS:
            diff, shift = compare(test, lambda s, d=detector: s[d], template)
            cells += [f"{diff:.2f}", f"{shift:.2f}"]
        points = "; ".join(f"{x:.2f}, {y:.2f}" for x, y in template)
        lines.append(f"| {name} | {points} | " + " | ".join(cells) + " |")
    diff, shift = compare(test, lambda s: s["dlib5"], None)
    lines.append(f"| baseline: dlib's 5-point model, dlib's alignment | - | {diff:.2f} | {shift:.2f} | | |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
