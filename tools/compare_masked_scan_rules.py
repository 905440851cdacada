"""When should the masked-face detector scan? Rules for the cascade's second scan, compared on held-out LFW.

For each photo of people in View 2 folds 9-10 (never trained on; the photos and mask seed of ``maskface eval
frontend``), one pass at the configured upsampling: dlib's HOG boxes (each with the mask classifier's probability)
and the masked-face detector's boxes, on the masked photo and on its unmasked original. Each rule decides from
HOG's boxes whether the masked-face detector's boxes join them (``merge_detections``); the table gives how many
masked photos then have their labelled face found, and on how many unmasked originals the second scan would run
(what the rule costs unmasked faces). Fallback passes at double resolution are left out, so the found counts sit a
little below the pipeline's.

Usage: ``python tools/compare_masked_scan_rules.py --data ../shared/data [--photos 600] [--out FILE.md]``
"""

from __future__ import annotations

import argparse
from functools import cache
from pathlib import Path

import numpy as np

from maskface.data.frontend_labels import fold_photos, label_photo, masked_version
from maskface.data.lfw import LFW
from maskface.eval.frontend import matches
from maskface.face.pipeline import FaceConfig, FacePipeline, covers_center, merge_detections
from maskface.io.files import atomic_write_text
from maskface.io.parallel import BatchReport, run_batch


@cache
def _cascade() -> FacePipeline:
    return FacePipeline(FaceConfig(detector="hog", landmarks=5))


def _boxes(image: np.ndarray) -> tuple[list, list]:
    """HOG's boxes with their mask probabilities, and the masked-face detector's boxes, at their thresholds."""
    cascade = _cascade()
    config, classifier = cascade.config, cascade.robust.classifier
    found = cascade.scan(image, config.upsample, min(config.masked_threshold, cascade.detector.threshold))
    hog = [d for d in found if d.detector == "hog" and d.score >= cascade.detector.threshold]
    masked = [d for d in found if d.detector == "masked-hog" and d.score >= config.masked_threshold]
    probabilities = [float(classifier.probability(classifier.cut_chip(image, cascade.predictor(image, d)))[0])
                     for d in hog]
    return list(zip(hog, probabilities)), masked


def _measure(task: tuple[str, int]) -> dict:
    path, seed = task
    sample = label_photo(path)
    original, masked = masked_version(sample, seed)
    return {"label": sample.box, "shape": original.shape, "masked": _boxes(masked), "original": _boxes(original)}


def _rules(threshold: float) -> dict:
    """Each rule: (HOG's boxes with mask probabilities, image shape) -> whether the masked-face detector scans."""
    return {
        "always (one shared pyramid, `masked_scan=\"always\"`)": lambda hog, shape: True,
        "HOG finds nothing": lambda hog, shape: not hog,
        "HOG finds nothing, or a face it finds looks masked": lambda hog, shape: not hog or any(
            p >= threshold for _, p in hog),
        "HOG's best score below 1.0": lambda hog, shape: not hog or max(d.score for d, _ in hog) < 1.0,
        "HOG's best score below 1.5": lambda hog, shape: not hog or max(d.score for d, _ in hog) < 1.5,
        "**no HOG face covers the photo's centre (v5, `masked_scan=\"center\"`)**":
            lambda hog, shape: not covers_center([d for d, _ in hog], shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="folder holding lfw/")
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the table here too (Markdown)")
    args = parser.parse_args()
    paths = fold_photos(LFW.find(args.data), [9, 10])
    paths = paths[:: max(1, len(paths) // args.photos)][: args.photos]
    report = BatchReport()
    rows = [r for _, r in run_batch([(p, args.seed) for p in paths], _measure, workers=args.workers,
                                    description="held-out LFW", report=report, name_of=lambda t: t[0])]
    lines = [f"`python tools/compare_masked_scan_rules.py --data {args.data} --photos {args.photos}`", "",
             f"{len(rows)} photos of LFW View 2 folds 9-10 people, synthetic masks with seed {args.seed}, one pass "
             f"at upsampling 1 ({len(report.failures)} without a HOG face on the original, so no label).", "",
             "| the masked-face detector scans when | masked faces found | unmasked photos scanned twice |",
             "|---|---:|---:|"]
    threshold = _cascade().robust.classifier.threshold
    for name, rule in _rules(threshold).items():
        found = scanned = 0
        for row in rows:
            hog, masked = row["masked"]
            kept = merge_detections([d for d, _ in hog] + (masked if rule(hog, row["shape"]) else []),
                                    (-np.inf, -np.inf))
            found += any(matches(d, row["label"]) for d in kept)
            scanned += rule(row["original"][0], row["shape"])
        lines.append(f"| {name} | {found} ({found / len(rows):.2%}) | {scanned} ({scanned / len(rows):.1%}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
