"""Choose YuNet's score threshold (``maskface.face.yunet.YUNET_THRESHOLD``, the default front end's detector).

Measured on LFW photos that nothing in the front end was chosen or trained on (people of View 2 folds 1-8 outside
the masked-face models' 2,000 training photos; the held-out test folds 9-10 are not touched), as
``tools/select_masked_detector.py`` measures the HOG cascade:

* **found**: synthetic masked photos (and their unmasked originals) whose labelled face the front end finds: a box
  whose centre lies in the label box (dlib's HOG on the unmasked original) and whose size is within a factor 1.5;
* **false fires**: the same photos with every face removed, blacked out (as redacted photos are) or painted over
  from its surroundings (OpenCV's Telea inpainting), in which the front end reports a face anyway; and
  scikit-image's bundled photos without a person (a cat, coffee, coins, a rocket, text, textures, ...). "Every face"
  is every box of dlib's HOG and of RetinaFace (at 0.5) on the original: LFW photos hold many faces besides the
  labelled one (people at the edges, in profile, half hidden) that HOG misses and YuNet finds, so removing HOG's
  alone counts real faces as false fires. RetinaFace is independent of YuNet, so YuNet's own false fires stay.

The front end is simulated exactly for every threshold from one scan of each pass down to a floor: YuNet at the
photo's own size, and, where that finds no face at the threshold, the ``upsample`` fallback at twice the size. The
first row is ``FacePipeline.detect`` as configured, a check on the simulation.

The rule: the highest threshold whose masked detection rate is within 0.1 point of the best in the grid; then
the false fires say what that costs. Also reported: how far YuNet's five points move when a mask is put on (mean
point distance over the eye distance, from its points on the unmasked original) and the mask classifier's accuracy
on dlib chips cut from YuNet's points, at the chosen threshold.

Usage: ``python tools/select_yunet_threshold.py --data ../shared/data --photos 1500 --out docs/results/...md``
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skimage_data

from maskface.data.frontend_labels import label_photo, masked_version
from maskface.data.lfw import LFW
from maskface.eval.frontend import matches
from maskface.face.align import five_point_chip_matrix, warp_chip
from maskface.face.batch import run_face_batch
from maskface.face.detect import create_detector
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.face.robust import shipped_mask_classifier
from maskface.face.yunet import YUNET_THRESHOLD, YuNetDetector
from maskface.io.files import atomic_write_text
from maskface.io.images import save_image
from maskface.io.parallel import BatchReport
from maskface.train.frontend import FrontendTrainConfig, held_out_photos

THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)
FLOOR = min(THRESHOLDS)
BLACKOUT_MARGIN = 0.3  # each face box grows by this fraction of its size on every side before it is removed
#: RetinaFace's score above which its boxes on the original count as faces to remove.
REMOVE_THRESHOLD = 0.5
#: scikit-image's bundled photos with no person in them.
SCENES = ("brick", "cell", "chelsea", "checkerboard", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
          "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
          "rocket", "text")
VARIANTS = ("masked", "original", "blacked", "painted")


@cache
def _scanner() -> YuNetDetector:
    return YuNetDetector(threshold=FLOOR)


@cache
def _remover():
    return create_detector("retinaface", threshold=REMOVE_THRESHOLD)


@cache
def _pipeline() -> FacePipeline:
    return FacePipeline(FaceConfig(fallback=("upsample",), mask_robust=False))


def _scan(image: np.ndarray) -> dict:
    """YuNet's faces down to FLOOR at the photo's size and at twice it, and the pipeline's own faces."""
    scanner = _scanner()
    return {"first": scanner(image), "second": scanner(image, upsample=scanner.upsample + 1),
            "configured": _pipeline().detect(image)}


def faces_at(scan: dict, threshold: float) -> list:
    """The faces the front end reports at this threshold: the first pass's, or the fallback's when it has none."""
    return ([d for d in scan["first"] if d.score >= threshold]
            or [d for d in scan["second"] if d.score >= threshold])


def faceless(original: np.ndarray, boxes: list) -> tuple[np.ndarray, np.ndarray]:
    """The photo with every face box (grown by BLACKOUT_MARGIN) blacked out, and painted over."""
    hole = np.zeros(original.shape[:2], np.uint8)
    h, w = hole.shape
    for left, top, right, bottom in boxes:
        dx, dy = BLACKOUT_MARGIN * (right - left), BLACKOUT_MARGIN * (bottom - top)
        hole[max(0, int(top - dy)):min(h, int(bottom + dy)), max(0, int(left - dx)):min(w, int(right + dx))] = 255
    blacked = np.where(hole[..., None] > 0, 0, original).astype(np.uint8)
    return blacked, cv2.inpaint(original, hole, 5, cv2.INPAINT_TELEA)


def _measure(task: tuple[str, int]) -> dict:
    path, seed = task
    sample = label_photo(path)
    original, masked = masked_version(sample, seed)
    others = [d.box for d in _remover()(original) if not any(_inside(d.center, box) for box in sample.boxes)]
    blacked, painted = faceless(original, sample.boxes + others)
    images = {"masked": masked, "original": original, "blacked": blacked, "painted": painted}
    row = {"path": path, "label": sample.box, "other_faces": len(others), **{k: _scan(v) for k, v in images.items()}}
    # The labelled face in the masked photo and the original, at the floor: points and the classifier's chips.
    pair = [next((d for d in row[k]["first"] + row[k]["second"] if matches(d, sample.box)), None)
            for k in ("original", "masked")]
    if all(pair):
        points = [d.points for d in pair]
        row["point_shift"] = float(np.linalg.norm(points[1] - points[0], axis=1).mean()
                                   / np.linalg.norm(points[0][0] - points[0][1]))
        classifier = shipped_mask_classifier()
        chips = [warp_chip(image, five_point_chip_matrix(d.points, "dlib", 150, 0.25), 150)
                 for image, d in zip((original, masked), pair)]
        row["mask_probability"] = [float(p) for p in classifier.probability(np.stack(chips))]
        row["pair_scores"] = [d.score for d in pair]
    return row


def _inside(point: tuple[float, float], box: tuple) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _scene_scans() -> dict[str, dict]:
    scans = {}
    for name in SCENES:
        image = np.asarray(getattr(skimage_data, name)())
        if image.dtype == bool:  # the horse is a silhouette
            image = image.astype(np.uint8) * 255
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        scans[name] = _scan(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return scans


def _row(rows: list[dict], scenes: dict[str, dict], threshold: float | None) -> dict:
    def faces(scan: dict) -> list:
        return scan["configured"] if threshold is None else faces_at(scan, threshold)

    return {"threshold": threshold if threshold is not None else YUNET_THRESHOLD, "configured": threshold is None,
            **{f"found_{k}": sum(any(matches(d, r["label"]) for d in faces(r[k])) for r in rows)
               for k in ("masked", "original")},
            **{f"fires_{k}": sum(bool(faces(r[k])) for r in rows) for k in ("blacked", "painted")},
            "fires_scenes": sum(bool(faces(s)) for s in scenes.values()),
            "fallback_masked": sum(not [d for d in r["masked"]["first"] if d.score >= (threshold or YUNET_THRESHOLD)]
                                   for r in rows)}


def choose(table: list[dict]) -> float:
    """The highest threshold whose masked detection is within 0.1 point of the grid's best."""
    grid = [r for r in table if not r["configured"]]
    best = max(r["found_masked"] for r in grid)
    photos = table[0]["photos"]
    return max(r["threshold"] for r in grid if 100 * (best - r["found_masked"]) / photos <= 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--photos", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1, help="mask seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="markdown table (a .json with the numbers beside)")
    parser.add_argument("--sheet", type=Path, help="PNG of photos with their faces removed where YuNet still fires "
                                                    "at the chosen threshold (red boxes), to look at")
    args = parser.parse_args()

    lfw = LFW.find(args.data)
    pool = held_out_photos(lfw, FrontendTrainConfig())
    paths = pool[:: max(1, len(pool) // args.photos)][: args.photos]
    report = BatchReport()
    rows = [r for _, r in run_face_batch([(p, args.seed) for p in paths], _measure, FaceConfig(mask_robust=False),
                                         workers=args.workers, description="selection photos", report=report,
                                         name_of=lambda t: t[0])]
    scenes = _scene_scans()
    table = [_row(rows, scenes, None)] + [_row(rows, scenes, t) for t in THRESHOLDS]
    for row in table:
        row["photos"] = len(rows)
    chosen = choose(table)
    pairs = [r for r in rows if "mask_probability" in r and min(r["pair_scores"]) >= chosen]
    classifier = shipped_mask_classifier()
    accuracy = np.mean([(r["mask_probability"][0] < classifier.threshold) + (r["mask_probability"][1]
                                                                                >= classifier.threshold)
                        for r in pairs]) / 2
    shift = [r["point_shift"] for r in pairs]
    record = {"photos": len(rows), "unlabelled": len(report.failures), "pool": len(pool), "mask_seed": args.seed,
              "scenes": list(SCENES), "chosen": chosen, "rows": table,
              "classifier_accuracy_on_yunet_chips": float(accuracy), "classifier_pairs": len(pairs),
              "point_shift_median": float(np.median(shift)), "point_shift_mean": float(np.mean(shift))}
    n = len(rows)
    lines = ["# YuNet's score threshold\n",
             f"`python tools/select_yunet_threshold.py --data {args.data} --photos {args.photos} --out {args.out}`\n",
             f"{n} photos of people in LFW View 2 folds 1-8 that the front end did not train on "
             f"({len(report.failures)} more had no face for HOG on the unmasked original, so no label), synthetic "
             f"masks with seed {args.seed}; false fires on the same photos with their faces removed and on "
             f"{len(SCENES)} photos without a person (scikit-image's). Removed from the photos: the faces HOG found "
             f"and {sum(r['other_faces'] for r in rows)} more that RetinaFace found (in "
             f"{sum(bool(r['other_faces']) for r in rows)} photos). Both passes use the threshold: YuNet at the "
             "photo's size, then at twice the size where that finds no face.\n",
             "| threshold | masked found | rate | unmasked found | rate | masked photos in the fallback pass "
             "| false fires, faces blacked out | false fires, faces painted over "
             f"| false fires, {len(SCENES)} scenes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        label = f"{row['threshold']:g}" + (" (as configured)" if row["configured"] else "")
        label = f"**{label}**" if row["threshold"] == chosen and not row["configured"] else label
        lines.append(f"| {label} | {row['found_masked']} | {100 * row['found_masked'] / n:.2f} % "
                     f"| {row['found_original']} | {100 * row['found_original'] / n:.2f} % | {row['fallback_masked']} "
                     f"| {row['fires_blacked']} | {row['fires_painted']} | {row['fires_scenes']} |")
    lines += ["", f"Chosen: **{chosen:g}**, the highest threshold whose masked detection rate is within 0.1 point of "
              "the grid's best.",
              f"At {chosen:g}, on the {len(pairs)} photos whose labelled face YuNet scores at least {chosen:g} both "
              "unmasked and masked (in either pass): the mask "
              f"moves YuNet's five points by {np.median(shift):.3f} eye distances (median; mean {np.mean(shift):.3f}), "
              "and the mask classifier, reading dlib chips cut from YuNet's points, is right on "
              f"{100 * accuracy:.2f} % of the unmasked and masked chips."]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    if args.sheet is not None:
        fire_sheet(rows, chosen, args.sheet)
    print("\n".join(lines))


def fire_sheet(rows: list[dict], threshold: float, out: Path, count: int = 24, tile: int = 200) -> None:
    """The first ``count`` faceless photos (blacked out, then painted over) in which YuNet fires at ``threshold``."""
    tiles = []
    for kind in ("blacked", "painted"):
        for row in [r for r in rows if faces_at(r[kind], threshold)][: count // 2]:
            faces = faces_at(row[kind], threshold)
            sample = label_photo(row["path"])
            original = masked_version(sample, 0)[0]
            others = [d.box for d in _remover()(original) if not any(_inside(d.center, b) for b in sample.boxes)]
            image = faceless(original, sample.boxes + others)[0 if kind == "blacked" else 1].copy()
            for d in faces:
                left, top, right, bottom = (int(v) for v in d.box)
                cv2.rectangle(image, (left, top), (right, bottom), (255, 0, 0), 2)
                cv2.putText(image, f"{d.score:.2f}", (left, max(10, top - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (255, 255, 0), 1, cv2.LINE_AA)
            tiles.append(cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA))
    while len(tiles) % 6 or not tiles:
        tiles.append(np.zeros((tile, tile, 3), np.uint8))
    save_image(np.vstack([np.hstack(tiles[i : i + 6]) for i in range(0, len(tiles), 6)]), out)


if __name__ == "__main__":
    main()
