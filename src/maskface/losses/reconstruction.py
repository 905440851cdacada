"""Pixel reconstruction for face completion."""

from __future__ import annotations

import torch
from torch import nn

from maskface.losses.registry import register_loss


@register_loss("masked_l1")
class MaskedL1Loss(nn.Module):
    """Mean absolute error inside the hidden region times ``hole_weight`` plus outside it times ``valid_weight``.

    Each region's error is averaged per image, then over the batch, so every face counts the same however large
    its mask (and a batch split over processes gives the same loss).
    """

    def __init__(self, hole_weight: float = 6.0, valid_weight: float = 1.0):
        super().__init__()
        self.hole_weight, self.valid_weight = hole_weight, valid_weight

    def forward(self, output: torch.Tensor, target: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        error = (output - target).abs().mean(dim=1, keepdim=True)
        hole = (error * occlusion).sum((1, 2, 3)) / occlusion.sum((1, 2, 3)).clamp_min(1)
        valid = (error * (1 - occlusion)).sum((1, 2, 3)) / (1 - occlusion).sum((1, 2, 3)).clamp_min(1)
        return (self.hole_weight * hole + self.valid_weight * valid).mean()
