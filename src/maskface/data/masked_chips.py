"""Online mask synthesis for training: every time a chip is seen it gets a new synthetic mask.

Items are addressed by ``(index, epoch)`` (see :class:`maskface.train.sampler.ResumableSampler`), and the mask,
flip and jitter of an item are drawn from ``(seed, epoch, image key)`` alone. So a DataLoader worker, another
process, or a resumed run draws exactly the same masks, whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from maskface.data.chips import ChipSet
from maskface.masks.render import MASK_TYPES
from maskface.masks.synth import MaskSynthesizer, mask_rng


@dataclass
class OnlineMaskConfig:
    """How training masks and augmentations are drawn."""

    #: mask types drawn from (uniformly)
    types: tuple[str, ...] = MASK_TYPES
    #: fraction of items left unmasked (an empty map): the occlusion estimator must learn "no mask" too
    unmasked_fraction: float = 0.0
    flip: bool = True
    #: similarity jitter after masking, so nets do not count on perfect alignment: pixels, degrees, scale
    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0


class MaskedChips(Dataset):
    """``(index, epoch) -> {"clean", "masked", "occlusion", "label", "index"}`` as float tensors in [0, 1]."""

    def __init__(self, chips: ChipSet, seed: int = 0, config: OnlineMaskConfig | None = None):
        from maskface.masks.render import MaskConfig

        self.chips = chips
        self.seed = seed
        self.config = config or OnlineMaskConfig()
        self.labels, self.names = chips.labels()
        self.synthesizer = MaskSynthesizer(MaskConfig(types=tuple(self.config.types)))

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        return self.sample(index, mask_rng(self.seed, f"train:{epoch}:{self.chips.keys[index]}"))

    def sample(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One item with its mask and augmentation drawn from ``rng``."""
        clean = self.chips.chip(index)
        landmarks = np.asarray(self.chips.landmarks[index], np.float64)
        if rng.random() < self.config.unmasked_fraction:
            masked, occlusion = clean, np.zeros(clean.shape[:2], np.float32)
        else:
            result = self.synthesizer(clean, landmarks, rng=rng)
            masked, occlusion = result.image, result.occlusion.astype(np.float32)
        images = [clean, masked, occlusion]
        if self.config.flip and rng.random() < 0.5:
            images = [np.ascontiguousarray(a[:, ::-1]) for a in images]
        if self.config.shift or self.config.rotate or self.config.scale:
            images = _jitter(images, rng, self.config)
        clean, masked, occlusion = images
        return {"clean": _tensor(clean), "masked": _tensor(masked),
                "occlusion": torch.from_numpy(np.ascontiguousarray(occlusion, np.float32))[None],
                "label": torch.tensor(int(self.labels[index])), "index": torch.tensor(index)}


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0


def _jitter(images: list[np.ndarray], rng: np.random.Generator, config: OnlineMaskConfig) -> list[np.ndarray]:
    """One random similarity transform applied to every array (maps with nearest, images with bilinear)."""
    height, width = images[0].shape[:2]
    angle = rng.uniform(-config.rotate, config.rotate)
    scale = 1 + rng.uniform(-config.scale, config.scale)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-config.shift, config.shift, 2)
    out = []
    for array in images:
        interpolation = cv2.INTER_NEAREST if array.ndim == 2 else cv2.INTER_LINEAR
        out.append(cv2.warpAffine(array, matrix, (width, height), flags=interpolation, borderMode=cv2.BORDER_REFLECT))
    return out
