"""Choose how maskface_v1 embeds a completed masked face, on data no model trains or is tested on.

AT&T/ORL (40 people) and Yale (15 people) take no part in training or in the LFW benchmark. Every photo is
masked (seed 0), re-detected with the default cascade (realistic alignment) and compared with every clean photo of
the dataset (M-U) and every other masked photo (M-M); a photo is never compared with its own clean original.
Rows: the teacher on the masked face, the teacher on the completed face, the student on it, and their ensemble
(the mean of the two embeddings). Writes a Markdown table.

    python tools/validate_masked_embedding.py --data ../shared/data --out docs/results/masked-embedding-validation.md
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from rich.progress import track
from sklearn.metrics.pairwise import euclidean_distances

from maskface.data.folders import read_identity_folders, read_yale
from maskface.errors import MaskfaceError
from maskface.eval.metrics import eer, fnmr_at_fmr
from maskface.face.pipeline import FacePipeline
from maskface.io.images import load_image
from maskface.io.locations import shipped_weights
from maskface.masks.synth import MaskSynthesizer, mask_key
from maskface.models.embedder import TorchEmbedder
from maskface.models.mask_aware import STUDENT_FILE, MaskAwareRecognizer, load_mask_aware
from maskface.models.registry import model_info


def chips(dataset, pipeline: FacePipeline, synthesizer: MaskSynthesizer):
    """Clean and masked (re-detected) chips of every photo where both are found, with identity labels."""
    clean, masked, labels = [], [], []
    for path, label in track(dataset.samples, description="masking and aligning"):
        try:
            image = load_image(path)
            face = pipeline.align(image, str(path))
            again = pipeline.align(synthesizer(image, face.landmarks, key=mask_key(path)).image, str(path))
        except MaskfaceError:
            continue
        clean.append(face.chip)
        masked.append(again.chip)
        labels.append(label)
    return np.stack(clean), np.stack(masked), np.array(labels)


def embed(recognizer: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    return TorchEmbedder(recognizer, model_info("maskface_v1").spec).embed_chips(chips)


def rates(dist: np.ndarray, same: np.ndarray, keep: np.ndarray) -> str:
    scores, labels = -dist[keep], same[keep].astype(int)
    return " / ".join(f"{100 * v:.2f}%" for v in (eer(scores, labels), fnmr_at_fmr(scores, labels, 1e-2),
                                                  fnmr_at_fmr(scores, labels, 1e-3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MASKFACE_DATA", "../shared/data"))
    parser.add_argument("--student", default=None, help="student.safetensors (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/masked-embedding-validation.md"))
    args = parser.parse_args()
    data = Path(args.data)
    student_file = Path(args.student) if args.student else shipped_weights(STUDENT_FILE, "reinstall maskface")
    base = load_mask_aware(student_file)
    teacher, student, deoccluder = base.teacher, base.student, base.deoccluder
    models = {
        "teacher on the masked face": teacher,
        "teacher on the completed face": MaskAwareRecognizer(teacher, teacher, deoccluder, masked_embedding="student"),
        "student on the completed face": MaskAwareRecognizer(teacher, student, deoccluder, masked_embedding="student"),
        "ensemble: mean of student and teacher": MaskAwareRecognizer(teacher, student, deoccluder),
    }
    pipeline, synthesizer = FacePipeline(), MaskSynthesizer(seed=0)
    lines = [f"Student: `{student_file.name}`. Cells: EER / FNMR at FMR 1e-2 / FNMR at FMR 1e-3.", ""]
    for name, dataset in (("AT&T/ORL", read_identity_folders(data / "att_faces")),
                          ("Yale", read_yale(data / "yalefaces"))):
        clean, masked, labels = chips(dataset, pipeline, synthesizer)
        same = labels[:, None] == labels[None]
        not_self = ~np.eye(len(labels), dtype=bool)
        upper = np.triu(np.ones_like(not_self), k=1)
        reference = embed(teacher, clean)  # the clean photos: the recogniser leaves unmasked faces to the teacher
        impostors_mu, impostors_mm = int((~same & not_self).sum()), int((~same & upper).sum())
        lines += [f"**{name}**: {len(labels)} photos masked and found again of {len(dataset.samples)}; "
                  f"M-U {impostors_mu:,} impostor pairs, M-M {impostors_mm:,}", "",
                  "| masked faces embedded by | M-U | M-M |", "|---|---:|---:|"]
        for label, model in models.items():
            vectors = embed(model, masked)
            lines.append(f"| {label} | {rates(euclidean_distances(vectors, reference), same, not_self)} | "
                         f"{rates(euclidean_distances(vectors, vectors), same, upper)} |")
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# How maskface_v1 embeds masked faces: validation on AT&T/ORL and Yale\n\n"
                        + "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
