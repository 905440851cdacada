"""Calibrate per-pair-type verification thresholds of the plain recognisers on data nothing trains or is tested on.

AT&T/ORL (40 people, 400 photos) and Yale (15 people, 165 photos) take no part in training or in the LFW
benchmark. Every photo goes through the default front end as it is, and again with a synthetic mask (seed 0),
re-detected (realistic alignment). Each face's pair type comes from the front end's mask classifier, as at
inference. Thresholds are the similarities that a target share of different-person pairs (within one dataset)
exceed. Writes the shipped table (``src/maskface/weights/pair_thresholds.json``) and a Markdown page.

    python tools/calibrate_thresholds.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from rich.progress import track

from maskface.apps.recognizer import Recognizer
from maskface.data.folders import read_identity_folders, read_yale
from maskface.errors import MaskfaceError
from maskface.eval.metrics import eer, fnmr_at_fmr
from maskface.io.files import atomic_write_text
from maskface.io.images import load_image
from maskface.masks.synth import MaskSynthesizer, mask_key
from maskface.models.embedder import load_embedder, score_matrix, to_similarity
from maskface.models.pair_thresholds import PAIR_TYPES, fmr_key, impostor_thresholds

MODELS = ("omz_sface_ensemble", "omz_reid_0095", "sface", "dlib_resnet_v1")
FMRS = (1e-2, 1e-3, 1e-4)
#: the false-match rate the shipped thresholds hold on the calibration data
SHIPPED_FMR = 1e-3


def faces(recognizer, dataset, synthesizer: MaskSynthesizer, name: str):
    """Chips, mask calls and labels of every photo found clean and again masked; the count of photos lost."""
    chips, called, truly_masked, labels, lost = [], [], [], [], 0
    for path, label in track(dataset.samples, description=f"{recognizer.embedder.spec.name}: {name}"):
        try:
            image = load_image(path)
            clean = recognizer.pipeline.align(image, str(path))
            masked_image = synthesizer(image, clean.landmarks, key=mask_key(path)).image
            masked = recognizer.pipeline.align(masked_image, str(path))
        except MaskfaceError:
            lost += 1
            continue
        for face, truth in ((clean, False), (masked, True)):
            chips.append(face.chip)
            called.append(bool(face.masked))
            truly_masked.append(truth)
            labels.append(label)
    return np.stack(chips), np.array(called), np.array(truly_masked), np.array(labels), lost


def calibrate(model: str, data: Path) -> tuple[dict, list[str]]:
    recognizer = Recognizer(load_embedder(model))  # no shipped thresholds: this makes them
    synthesizer = MaskSynthesizer(seed=0)
    parts, lines = [], []
    for name, dataset in (("AT&T/ORL", read_identity_folders(data / "att_faces")),
                          ("Yale", read_yale(data / "yalefaces"))):
        chips, called, truth, labels, lost = faces(recognizer, dataset, synthesizer, name)
        parts.append((name, chips, called, truth, labels))
        lines.append(f"{name}: {len(labels) // 2} of {len(dataset.samples)} photos found clean and masked "
                     f"({lost} lost); mask classifier: {called[truth].mean():.1%} of masked faces called masked, "
                     f"{called[~truth].mean():.1%} of clean ones")
    chips = np.concatenate([p[1] for p in parts])
    called = np.concatenate([p[2] for p in parts])
    labels = np.concatenate([[f"{p[0]}/{x}" for x in p[4]] for p in parts])
    groups = np.concatenate([[p[0]] * len(p[4]) for p in parts])
    spec = recognizer.embedder.spec
    similarity = to_similarity(score_matrix(*(2 * [recognizer.embedder.embed_chips(chips)]), spec.metric), spec.metric)
    thresholds = impostor_thresholds(similarity, labels, called, FMRS, groups)
    upper = np.triu(np.ones(len(labels), dtype=bool), k=1) & (groups[:, None] == groups[None])
    same = labels[:, None] == labels[None]
    kind = called.astype(int)[:, None] + called.astype(int)[None]
    table = ["| pair type (by the mask classifier) | genuine pairs | impostor pairs | EER | "
             + " | ".join(f"threshold at FMR {fmr_key(f)} | FNMR there" for f in FMRS) + " |",
             "|---|---:|---:|---:|" + "---:|---:|" * len(FMRS)]
    for index, kind_name in enumerate(PAIR_TYPES):
        keep = upper & (kind == index)
        scores, truth = similarity[keep], same[keep].astype(int)
        cells = [f"{thresholds[kind_name][fmr_key(f)]:.4f} | {100 * fnmr_at_fmr(scores, truth, f):.2f}%" for f in FMRS]
        table.append(f"| {kind_name} | {truth.sum():,} | {(1 - truth).sum():,} | {100 * eer(scores, truth):.2f}% | "
                     + " | ".join(cells) + " |")
    # thresholds are stored in the model's own score: similarity for cosine, distance for Euclidean
    sign = 1.0 if spec.metric == "cosine" else -1.0
    entry = {"metric": spec.metric, "default_fmr": fmr_key(SHIPPED_FMR),
             "thresholds": {k: {f: sign * v for f, v in row.items()} for k, row in thresholds.items()}}
    return entry, lines + ["", *table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MASKFACE_DATA", "../shared/data")))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--table", type=Path, default=Path("src/maskface/weights/pair_thresholds.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/pair-thresholds.md"))
    args = parser.parse_args()
    shipped, page = {}, []
    for model in args.models:
        entry, lines = calibrate(model, args.data)
        shipped[model] = entry
        page += [f"## {model} ({entry['metric']}; shipped: FMR {entry['default_fmr']})", "", *lines, ""]
        print("\n".join(page[-len(lines) - 3:]))
    command = "python tools/calibrate_thresholds.py --data ../shared/data"
    atomic_write_text(args.table, json.dumps({"made_by": command, "models": shipped}, indent=1) + "\n")
    atomic_write_text(args.out, "# Per-pair-type thresholds, calibrated on AT&T/ORL and Yale with synthetic masks\n\n"
                      f"Made by `{command}`; the shipped thresholds are the FMR {fmr_key(SHIPPED_FMR)} column, "
                      "in `src/maskface/weights/pair_thresholds.json`. Similarity is the model's score (cosine "
                      "similarity, or minus the Euclidean distance). Pair types follow the front end's mask "
                      "classifier, as at inference; impostor pairs are drawn within each dataset.\n\n"
                      + "\n".join(page))


if __name__ == "__main__":
    main()
