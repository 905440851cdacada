"""How well the front end finds and landmarks masked faces (``maskface eval frontend``).

* **Synthetic masked LFW** (people of held-out View 2 folds): labels come from dlib's standard HOG detector and
  5-point model on the unmasked original; the photo then gets a synthetic mask (seeded per image) and we measure
  the detection rate (a box whose centre lies inside the label box and whose size is within a factor 1.5) of HOG
  alone, of front end v5's HOG cascade (``cascade``) and of the default front end (``frontend``: YuNet), the 5-point
  NME (mean point error over the inter-ocular distance, the distance between the two eye centres) of the standard
  and the masked-face landmark models, and the mask classifier's accuracy.
* **Real masked photos** (a folder such as ``rwmfd/``, no labels): how many photos each front end finds a face in,
  and a contact sheet of the default front end's boxes and points.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from maskface.data.frontend_labels import fold_photos, label_photo, masked_version
from maskface.data.lfw import LFW
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.detect import Detection, HogDetector
from maskface.face.landmarks import LandmarkPredictor
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.face.robust import shipped_mask_classifier, shipped_masked_landmarks
from maskface.io.images import iter_image_files, load_image, save_image
from maskface.io.parallel import BatchReport, run_batch


def nme(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean 5-point error over the inter-ocular distance (dlib 5-point layout: 0-1 one eye, 2-3 the other)."""
    ocular = np.linalg.norm(truth[0:2].mean(0) - truth[2:4].mean(0))
    return float(np.linalg.norm(points - truth, axis=1).mean() / max(ocular, 1e-6))


def matches(detection: Detection, label: tuple[int, int, int, int]) -> bool:
    left, top, right, bottom = label
    cx, cy = detection.center
    size = np.sqrt(detection.area)
    label_size = np.sqrt(max((right - left) * (bottom - top), 1))
    return left <= cx <= right and top <= cy <= bottom and 1 / 1.5 <= size / label_size <= 1.5


@cache
def _tools() -> tuple[HogDetector, LandmarkPredictor, FacePipeline, FacePipeline]:
    """HOG, dlib's 5-point model, front end v5's HOG cascade and the default front end."""
    return (HogDetector(1), LandmarkPredictor(5),
            FacePipeline(FaceConfig(detector="hog", landmarks=5, fallback=("upsample",))),
            FacePipeline(FaceConfig(landmarks=5, fallback=("upsample",))))


def _measure_one(task: tuple[str, int]) -> dict:
    path, seed = task
    hog, standard5, cascade, frontend = _tools()
    sample = label_photo(path)
    image, masked = masked_version(sample, seed)
    label_box = sample.detection
    hog_found = any(matches(d, sample.box) for d in hog(masked) + hog(masked, upsample=2))
    cascade_found = [d for d in cascade.detect(masked) if matches(d, sample.box)]
    frontend_found = [d for d in frontend.detect(masked) if matches(d, sample.box)]
    shape = shipped_masked_landmarks()(masked, label_box.to_dlib())
    robust_points = np.array([[p.x, p.y] for p in shape.parts()], float)
    classifier = shipped_mask_classifier()
    clean_chip = classifier.cut_chip(image, standard5(image, label_box))
    masked_chip = classifier.cut_chip(masked, standard5(masked, label_box))
    p_clean, p_masked = classifier.probability(np.stack([clean_chip, masked_chip]))
    return {"hog": hog_found, "cascade": bool(cascade_found),
            "cascade_detector": cascade_found[0].detector if cascade_found else "none",
            "frontend": bool(frontend_found),
            "frontend_detector": frontend_found[0].detector if frontend_found else "none",
            "nme_standard": nme(standard5(masked, label_box), sample.points),
            "nme_masked_model": nme(robust_points, sample.points),
            "classifier_right": int(p_clean < classifier.threshold) + int(p_masked >= classifier.threshold)}


def synthetic_lfw(data: str | Path, folds: list[int], max_images: int, seed: int, workers: int) -> dict:
    """Detection rate, NME and classifier accuracy on masked photos of held-out LFW people."""
    lfw = LFW.find(data)
    paths = fold_photos(lfw, folds)
    paths = paths[:: max(1, len(paths) // max_images)][:max_images]
    report = BatchReport()
    rows = [r for _, r in run_batch([(p, seed) for p in paths], _measure_one, workers=workers,
                                    description="synthetic masked LFW", report=report,
                                    name_of=lambda t: t[0])]
    by = dict(Counter(r["cascade_detector"] for r in rows))
    return {"folds": folds, "photos": len(rows), "unlabelled": len(report.failures), "seed": seed,
            "detection_rate_hog": float(np.mean([r["hog"] for r in rows])),
            "detection_rate_cascade": float(np.mean([r["cascade"] for r in rows])),
            "cascade_detectors": by,
            "detection_rate_frontend": float(np.mean([r["frontend"] for r in rows])),
            "frontend_detectors": dict(Counter(r["frontend_detector"] for r in rows)),
            "nme_standard_5pt": float(np.mean([r["nme_standard"] for r in rows])),
            "nme_masked_5pt": float(np.mean([r["nme_masked_model"] for r in rows])),
            "mask_classifier_accuracy": float(np.mean([r["classifier_right"] for r in rows]) / 2)}


@dataclass
class RealPhoto:
    path: str
    hog: list[Detection]
    cascade: list[Detection]  # front end v5's HOG cascade
    faces: list  # Face objects from the default front end


def _real_one(path: str) -> RealPhoto:
    hog, _, cascade, _ = _tools()
    image = load_image(path)
    return RealPhoto(path, hog(image) or hog(image, upsample=2), cascade.detect(image),
                     worker_pipeline().align_all(image))


def real_photos(folder: str | Path, workers: int, sheet: Path | None = None, sheet_count: int = 24) -> dict:
    """Photos with a face found by HOG alone, by front end v5's cascade and by the default front end, over a folder
    of real masked photos."""
    paths = [str(p) for p, _ in iter_image_files([folder])]
    report = BatchReport()
    config = FaceConfig(landmarks=5, fallback=("upsample",))
    photos = [r for _, r in run_face_batch(paths, _real_one, config, workers=workers, description="real masked photos",
                                           report=report)]
    result = {"photos": len(paths), "unreadable": len(report.failures),
              "found_hog": sum(bool(p.hog) for p in photos), "found_cascade": sum(bool(p.cascade) for p in photos),
              "found_frontend": sum(bool(p.faces) for p in photos),
              "frontend_masked_faces": sum(bool(f.masked) for p in photos for f in p.faces),
              "frontend_faces": sum(len(p.faces) for p in photos)}
    if sheet is not None:
        _contact_sheet(photos, sheet, sheet_count)
    return result


def _contact_sheet(photos: list[RealPhoto], out: Path, count: int, tile: int = 200) -> None:
    """Boxes (green: a standard detector, orange: the masked-face detector) and 5 points of the default front end
    on real masked photos: ``count`` photos where it found a face, taken evenly over the folder, half of them ones
    that HOG alone missed."""
    rescued = [p for p in photos if p.faces and not p.hog]
    found = [p for p in photos if p.faces and p.hog]
    chosen = rescued[:: max(1, len(rescued) // (count // 2))][: count // 2]
    chosen += found[:: max(1, len(found) // (count - len(chosen)))][: count - len(chosen)]
    tiles = []
    for photo in chosen:
        image = load_image(photo.path).copy()
        scale = tile / max(image.shape[:2])
        for face in photo.faces:
            colour = (255, 140, 0) if face.detector.startswith("masked") else (0, 200, 0)
            left, top, right, bottom = (int(v) for v in face.detection.box)
            cv2.rectangle(image, (left, top), (right, bottom), colour, max(1, int(2 / scale)))
            points = face.detection.points if face.detection.points is not None else face.landmarks
            for x, y in points:
                cv2.circle(image, (int(x), int(y)), max(2, int(2.5 / scale)), (255, 0, 0), -1)
            label = f"{face.detector} mask {face.mask_probability:.2f}"
            cv2.putText(image, label, (left, max(12, top - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 / scale, colour,
                        max(1, int(1 / scale)), cv2.LINE_AA)
        small = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        canvas[: small.shape[0], : small.shape[1]] = small
        tiles.append(canvas)
    while len(tiles) % 6:
        tiles.append(np.full((tile, tile, 3), 255, np.uint8))
    rows = [np.hstack(tiles[i : i + 6]) for i in range(0, len(tiles), 6)]
    save_image(np.vstack(rows), out)
