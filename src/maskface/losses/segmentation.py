"""Losses for the occlusion estimator's maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskface.losses.registry import register_loss


@register_loss("bce_dice")
class BCEDiceLoss(nn.Module):
    """Pixel-wise binary cross-entropy plus ``dice_weight`` times the soft Dice loss ``1 - 2|P.T| / (|P| + |T|)``.

    Dice is computed per image with +1 smoothing, so an image without a mask scores 0 when nothing is predicted.
    """

    def __init__(self, dice_weight: float = 1.0):
        super().__init__()
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target)
        probability = torch.sigmoid(logits)
        overlap = (probability * target).sum((1, 2, 3))
        total = probability.sum((1, 2, 3)) + target.sum((1, 2, 3))
        dice = 1 - (2 * overlap + 1) / (total + 1)
        return bce + self.dice_weight * dice.mean()
