"""De-occlusion measured end to end on held-out LFW people (``maskface eval deocclusion``): their chips masked,
completed by a registered model and scored by :func:`~maskface.eval.deocclusion.completion_report`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskface.data.chips import lfw_chips
from maskface.data.lfw import LFW
from maskface.defaults import TEACHER_MODEL
from maskface.eval.deocclusion import completion_report, mask_held_out
from maskface.models import create_model
from maskface.models.deocclusion import Deoccluder
from maskface.models.embedder import load_embedder
from maskface.models.runtime import select_device


@dataclass
class CompletionRun:
    """The report (keys of the JSON file), the image sets behind it, and the model that completed them."""

    report: dict
    images: dict[str, np.ndarray]
    deoccluder: Deoccluder


def completion_on_lfw(lfw: LFW, folds: list[int], model: str, seed: int, limit: int, workers: int,
                      device: str | None = None) -> CompletionRun:
    """``limit`` masked faces (evenly spaced, masks drawn from ``seed``) of the people of ``folds`` completed by
    ``model``, and ``limit // 2`` unmasked ones for the estimator's false-alarm rate."""
    deoccluder = create_model(model, pretrained=True).eval().to(select_device(device))  # fails fast on a bad name
    teacher = load_embedder(TEACHER_MODEL, device=device)
    chips = lfw_chips(lfw.root, workers=workers).subset(lfw.people_of_folds(folds))
    faces = mask_held_out(chips, seed, limit)
    clean = np.stack([chips.chip(int(i)) for i in np.linspace(1, len(chips) - 2, limit // 2).round()])
    report, images = completion_report(faces, deoccluder, teacher, clean)
    report.update({"model": model, "folds": folds, "mask_seed": seed})
    return CompletionRun(report, images, deoccluder)


def picture_rows(images: dict[str, np.ndarray], count: int = 6) -> dict[str, np.ndarray]:
    """``count`` evenly spaced faces of each image set, as float images in [0, 1] (maps as 0/1), for
    :func:`~maskface.eval.plots.plot_deocclusion`."""
    pick = np.linspace(0, len(images["original"]) - 1, count).round().astype(int)
    return {k: (v[pick] / 255.0 if v.dtype == np.uint8 else v[pick].astype(float)) for k, v in images.items()}
