"""Hinge adversarial losses (Lim & Ye; SN-GAN, SN-PatchGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskface.losses.registry import register_loss


@register_loss("hinge_discriminator")
class HingeDiscriminatorLoss(nn.Module):
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``: zero once real scores >= 1 and fake <= -1."""

    def forward(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


@register_loss("hinge_generator")
class HingeGeneratorLoss(nn.Module):
    """``-mean(D(fake))``: the generator raises the discriminator's score of its output."""

    def forward(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()
