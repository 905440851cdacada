"""Choose the masked-face detector and its score threshold (``FaceConfig.masked_threshold``).

Measured on LFW photos the front end never trained on (people of folds 1-8 outside the 2,000 training photos;
the held-out test folds 9-10 are not touched):

* **found**: synthetic masked photos whose labelled face the cascade finds (a box whose centre lies in the label
  box and whose size is within a factor 1.5, as ``maskface eval frontend`` counts);
* **false fires**: the same photos unmasked with every face HOG found removed, so no face is left, in which the
  cascade reports a face anyway; a face is removed two ways, blacked out (as redacted photos are) and painted over
  from its surroundings (OpenCV's Telea inpainting, closer to a photo without a person in it).

The first row is the front end exactly as configured (``FacePipeline.detect``, the shipped detector or the one
given by ``--masked-detector``); the others set the masked-face threshold of both passes (the first, and the
fallback at double resolution when the first finds nothing), from one scan of each pass down to a floor.

Usage: ``python tools/select_masked_detector.py --data ../shared/data --photos 1500 --out docs/results/...md``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import cv2
import dlib
import numpy as np

from maskface.data.frontend_labels import label_photo, masked_version
from maskface.data.lfw import LFW
from maskface.eval.frontend import matches
from maskface.face.pipeline import FaceConfig, FacePipeline, merge_detections
from maskface.io.files import atomic_write_text
from maskface.io.parallel import BatchReport, run_batch
from maskface.train.frontend import FrontendTrainConfig, held_out_photos

#: Masked-face thresholds tried (in both passes).
MASKED_THRESHOLDS = (-0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -0.9, -1.0)
FLOOR = min(MASKED_THRESHOLDS)
BLACKOUT_MARGIN = 0.3  # each face box grows by this fraction of its size on every side before it is removed


@cache
def _cascade() -> FacePipeline:
    return FacePipeline(FaceConfig(detector="hog", landmarks=5, fallback=("upsample",)))


def _use_candidates(files: dict[str, str]) -> None:
    """Evaluate candidate detector files instead of the shipped ones (in every worker)."""
    cascade = _cascade()
    cascade.robust = replace(cascade.robust, **{k: dlib.fhog_object_detector(v) for k, v in files.items()})


def _passes(image: np.ndarray) -> dict:
    """Every box of the first pass scored down to FLOOR, the same for the fallback pass where the first finds no
    face at the strictest threshold tried (so wherever some threshold would fall back), and the configured result."""
    cascade = _cascade()
    config = cascade.config
    first = cascade.scan(image, config.upsample, FLOOR)
    empty = not merge_detections(first, (cascade.detector.threshold, max(MASKED_THRESHOLDS)))
    second = cascade.scan(image, config.upsample + 1, FLOOR) if empty else []
    return {"first": first, "second": second, "configured": cascade.detect(image), "shape": image.shape}


def _measure(task: tuple[str, int, dict[str, str]]) -> dict:
    path, seed, candidates = task
    _use_candidates(candidates)
    sample = label_photo(path)
    original, masked = masked_version(sample, seed)
    hole = np.zeros(original.shape[:2], np.uint8)
    h, w = hole.shape
    for left, top, right, bottom in sample.boxes:
        dx, dy = BLACKOUT_MARGIN * (right - left), BLACKOUT_MARGIN * (bottom - top)
        hole[max(0, int(top - dy)):min(h, int(bottom + dy)), max(0, int(left - dx)):min(w, int(right + dx))] = 255
    blacked = np.where(hole[..., None] > 0, 0, original).astype(np.uint8)
    painted = cv2.inpaint(original, hole, 5, cv2.INPAINT_TELEA)
    return {"label": sample.box, "masked": _passes(masked), "blacked": _passes(blacked),
            "painted": _passes(painted)}


def _faces(passes: dict, masked_threshold: float) -> list:
    """The faces the cascade reports with this masked-face threshold in both passes (and its ``masked_scan``)."""
    thresholds = (_cascade().detector.threshold, masked_threshold)
    return _pass_faces(passes["first"], thresholds, passes["shape"]) or _pass_faces(passes["second"], thresholds,
                                                                                   passes["shape"])


def _pass_faces(boxes: list, thresholds: tuple[float, float], shape: tuple[int, ...]) -> list:
    standard = merge_detections([d for d in boxes if d.detector.startswith("hog")], thresholds)
    if not _cascade().needs_masked_scan(standard, shape):
        return standard
    return merge_detections(boxes, thresholds)


def _configured_row(rows: list[dict]) -> dict:
    """The front end exactly as configured (``FacePipeline.detect``): a check that the grid, which scans once down
    to FLOOR, reproduces the pipeline (its row at the configured threshold must match this one)."""
    return {"masked_threshold": FaceConfig().masked_threshold, "configured": True,
            "found": sum(any(matches(d, r["label"]) for d in r["masked"]["configured"]) for r in rows),
            "fires_blacked": sum(bool(r["blacked"]["configured"]) for r in rows),
            "fires_painted": sum(bool(r["painted"]["configured"]) for r in rows)}


def _row(rows: list[dict], masked: float) -> dict:
    return {"masked_threshold": masked,
            "found": sum(any(matches(d, r["label"]) for d in _faces(r["masked"], masked)) for r in rows),
            "fires_blacked": sum(bool(_faces(r["blacked"], masked)) for r in rows),
            "fires_painted": sum(bool(_faces(r["painted"], masked)) for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--photos", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1, help="mask seed")
    parser.add_argument("--masked-detector", help="a candidate masked-face detector file instead of the shipped one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="markdown table (a .json with the numbers beside)")
    args = parser.parse_args()

    lfw = LFW.find(args.data)
    pool = held_out_photos(lfw, FrontendTrainConfig())
    paths = pool[:: max(1, len(pool) // args.photos)][: args.photos]
    report = BatchReport()
    candidates = {"masked_detector": args.masked_detector} if args.masked_detector else {}
    tasks = [(p, args.seed, candidates) for p in paths]
    rows = [r for _, r in run_batch(tasks, _measure, workers=args.workers,
                                    description="selection photos", report=report, name_of=lambda t: t[0])]
    configured = (_cascade().detector.threshold, FaceConfig().masked_threshold)
    empty = {k: sum(not merge_detections(r[k]["first"], configured) for r in rows)
             for k in ("masked", "blacked", "painted")}
    table = [_configured_row(rows)] + [_row(rows, t) for t in MASKED_THRESHOLDS]
    record = {"photos": len(rows), "unlabelled": len(report.failures), "pool": len(pool), "mask_seed": args.seed,
              "candidates": candidates, "empty_after_first_pass": empty, "rows": table}
    command = " ".join(["python tools/select_masked_detector.py", f"--data {args.data}", f"--photos {args.photos}",
                        *[f"--{k.replace('_', '-')} {v}" for k, v in candidates.items()],
                        f"--out {args.out}"])
    detector = args.masked_detector or "the shipped masked-face detector"
    lines = [f"# Masked-face detector selection: {detector}\n", f"`{command}`\n",
             f"{len(rows)} photos of people in LFW View 2 folds 1-8 that the front end did not train on "
             f"({len(report.failures)} more had no face for HOG on the unmasked original, so no label), synthetic "
             f"masks with seed {args.seed}. As configured (masked-face threshold {configured[1]}), the first pass "
             f"found no face at all in {empty['masked']} masked photos, and in {empty['blacked']} (faces blacked "
             f"out) and {empty['painted']} (faces painted over) of the {len(rows)} photos with their faces removed; "
             "only those go on to the fallback pass at double resolution.\n",
             "| masked-face threshold (both passes) | masked photos found | detection rate "
             "| false fires, faces blacked out | false fires, faces painted over |",
             "|---|---:|---:|---:|---:|"]
    for row in table:
        label = f"{row['masked_threshold']:.1f}" + (" (as configured)" if row.get("configured") else "")
        lines.append(f"| {label} | {row['found']} | "
                     f"{100 * row['found'] / len(rows):.2f} % | {row['fires_blacked']} | {row['fires_painted']} |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
