"""Make ``src/maskface/face/canonical68.json``: the mean 68-point face shape in dlib-chip coordinates.

The 5-point and aligned-chip paths of the mask renderer fit this shape to the points they have. It is the mean of
dlib's 68-point predictions on LFW people of View 2 folds 1-5 (150x150 chips, padding 0.25), in units of the chip
side. Run: ``python tools/make_canonical68.py --data ../shared/data [--limit 2000]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskface.data.lfw import LFW
from maskface.face.align import invert_affine, transform_points
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=2000)
    args = parser.parse_args()
    lfw = LFW.find(args.data)
    people = sorted(lfw.people_of_folds([1, 2, 3, 4, 5]))
    paths = [p for name in people for p in sorted((lfw.root / name).glob("*.jpg"))[:1]][: args.limit]
    pipeline = FacePipeline(FaceConfig(detector="hog", select="center", fallback=()))
    shapes = []
    for path in paths:
        try:
            face = pipeline.align(load_image(path), str(path))
        except Exception:
            continue
        shapes.append(transform_points(face.landmarks, invert_affine(face.chip_to_image)) / 150.0)
    mean = np.mean(shapes, axis=0)
    out = Path(__file__).resolve().parents[1] / "src/maskface/face/canonical68.json"
    out.write_text(json.dumps({"source": f"mean of {len(shapes)} LFW faces (View 2 folds 1-5), dlib 68-point "
                                         "predictor, dlib chip coordinates / chip side (padding 0.25)",
                               "points": np.round(mean, 5).tolist()}, indent=1) + "\n")
    print(f"wrote {out} from {len(shapes)} faces")


if __name__ == "__main__":
    main()
