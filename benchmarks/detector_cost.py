"""What a masked-face detector adds to dlib's HOG face detector when both scan one shared HOG pyramid (dlib's
``run_multiple``, as ``masked_scan="always"`` runs them), and each alone (as the default cascade runs it on a photo
whose centre HOG leaves empty), on real 250x250 LFW photos held in memory: milliseconds per photo, the fastest of
``--repeats`` interleaved runs each. Run:
``python benchmarks/detector_cost.py [DETECTOR.svm ...] [--images 60] [--repeats 5]`` (default: the shipped one)."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import dlib

from common import DATA, fastest_interleaved, machine
from maskface.face.pipeline import FaceConfig
from maskface.face.robust import DETECTOR_FILE, weights_path
from maskface.io.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("detectors", nargs="*", type=Path, help="dlib .svm files (default: the shipped detector)")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = args.detectors or [weights_path(DETECTOR_FILE)]
    images = [load_image(p) for p in sorted((DATA / "lfw").glob("*/*.jpg"))[:: 13233 // args.images][: args.images]]
    hog = dlib.get_frontal_face_detector()
    candidates = {f"{f.parent.name}/{f.name}": dlib.fhog_object_detector(str(f)) for f in files}
    sets = ({"dlib HOG alone": [hog]} | {f"HOG + {name}": [hog, d] for name, d in candidates.items()}
            | {f"{name} alone (its own pyramid)": [d] for name, d in candidates.items()})
    floor = FaceConfig().masked_threshold

    def scan_all(detectors: list) -> None:
        for image in images:
            dlib.fhog_object_detector.run_multiple(detectors, image, 1, floor)

    seconds = fastest_interleaved({name: partial(scan_all, detectors) for name, detectors in sets.items()},
                                  args.repeats)
    best = {name: 1000 * value / len(images) for name, value in seconds.items()}
    print(f"machine: {machine()}; {len(images)} LFW photos, one upsampling, fastest of {args.repeats}\n")
    print("| detectors | ms per photo | extra over HOG alone |\n|---|---:|---:|")
    base = best["dlib HOG alone"]
    for name, value in best.items():
        print(f"| {name} | {value:.2f} | {value - base:+.2f} ms ({value / base - 1:+.1%}) |")


if __name__ == "__main__":
    main()
