"""How well masked faces are completed, on LFW chips of held-out people with deterministic synthetic masks.

For every face: PSNR and SSIM inside the mask (completed vs original, and the masked input vs original for
reference), the teacher's cosine similarity to the original for the masked input and for the completed face, and
the occlusion estimator's IoU. Completion runs twice: with the true map (what the generator can do) and with the
estimated map (what the whole module does on a photo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity

from maskface.data.chips import ChipSet
from maskface.masks.synth import MaskSynthesizer
from maskface.models.deocclusion import Deoccluder, chips_to_tensor, complete_chips
from maskface.models.embedder import Embedder


@dataclass
class HeldOutFaces:
    """Original chips, their deterministically masked versions and the true occlusion maps."""

    keys: list[str]
    original: np.ndarray
    masked: np.ndarray
    occlusion: np.ndarray


def mask_held_out(chips: ChipSet, seed: int = 0, limit: int | None = None) -> HeldOutFaces:
    """Mask chips (evenly spaced ``limit`` of them) with masks drawn from ``(seed, image key)``."""
    index = np.arange(len(chips))
    if limit and limit < len(chips):
        index = np.linspace(0, len(chips) - 1, limit).round().astype(int)
    synthesizer = MaskSynthesizer(seed=seed)
    original, masked, maps, keys = [], [], [], []
    for i in index:
        chip = chips.chip(int(i))
        result = synthesizer(chip, np.asarray(chips.landmarks[int(i)], np.float64), key=chips.keys[int(i)])
        original.append(chip)
        masked.append(result.image)
        maps.append(result.occlusion)
        keys.append(chips.keys[int(i)])
    return HeldOutFaces(keys, np.stack(original), np.stack(masked), np.stack(maps))


def psnr_inside(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images over the pixels of ``region``."""
    diff = (a.astype(np.float64) - b.astype(np.float64))[region] / 255.0
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim_inside(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """Mean SSIM (Gaussian window, sigma 1.5, as in Wang et al.) over the pixels of ``region``."""
    _, ssim_map = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    return float(ssim_map.mean(axis=2)[region].mean())


def iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two boolean maps (1.0 when both are empty)."""
    union = np.logical_or(predicted, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, target).sum() / union)


@torch.inference_mode()
def raw_estimates(deoccluder: Deoccluder, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The estimator's own maps (:meth:`Deoccluder.segment`: no dilation, no minimum area) as bool arrays."""
    device = next(deoccluder.parameters()).device
    maps = [deoccluder.segment(chips_to_tensor(chips[s : s + batch_size], device))[:, 0].bool().cpu().numpy()
            for s in range(0, len(chips), batch_size)]
    return np.concatenate(maps)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]`` for every row."""
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def completion_report(faces: HeldOutFaces, deoccluder: Deoccluder, teacher: Embedder,
                      clean: np.ndarray) -> tuple[dict, dict[str, np.ndarray]]:
    """Every completion metric over ``faces``; ``clean`` are unmasked held-out chips for the false-alarm rate.

    Returns the report and the image sets it was computed from (for pictures).
    """
    true_done, _ = complete_chips(deoccluder, faces.masked, faces.occlusion)
    estimated_done, estimated_maps = complete_chips(deoccluder, faces.masked)
    raw = raw_estimates(deoccluder, faces.masked)
    clean_maps = complete_chips(deoccluder, clean)[1]

    def region_metrics(images: np.ndarray) -> dict[str, float]:
        psnr = [psnr_inside(x, o, m) for x, o, m in zip(images, faces.original, faces.occlusion)]
        ssim = [ssim_inside(x, o, m) for x, o, m in zip(images, faces.original, faces.occlusion)]
        return {"psnr_in_mask_db": float(np.mean(psnr)), "ssim_in_mask": float(np.mean(ssim))}

    reference = teacher.embed_chips(faces.original)
    cosines = {name: cosine_rows(reference, teacher.embed_chips(images))
               for name, images in (("masked", faces.masked), ("completed_true_map", true_done),
                                    ("completed_estimated_map", estimated_done))}
    ious = np.array([iou(p, t) for p, t in zip(raw, faces.occlusion)])
    report = {
        "faces": len(faces.keys),
        "masked_input": region_metrics(faces.masked),
        "completed_true_map": region_metrics(true_done),
        "completed_estimated_map": region_metrics(estimated_done),
        "teacher_cosine_to_original": {k: float(v.mean()) for k, v in cosines.items()},
        "teacher_cosine_improved_share": {k: float((v > cosines["masked"]).mean()) for k, v in cosines.items()
                                          if k != "masked"},
        "estimator": {
            "mean_iou": float(ious.mean()),
            "median_iou": float(np.median(ious)),
            "pooled_iou": iou(raw, faces.occlusion),
            "share_iou_at_least_0.9": float((ious >= 0.9).mean()),
            "masked_faces_judged_masked": float(estimated_maps.any(axis=(1, 2)).mean()),
            "clean_faces_judged_masked": float(clean_maps.any(axis=(1, 2)).mean()),
            "clean_faces": len(clean),
        },
    }
    images = {"original": faces.original, "masked": faces.masked, "completed": estimated_done,
              "estimated_map": estimated_maps, "true_map": faces.occlusion}
    return report, images
