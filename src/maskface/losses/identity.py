"""Identity preservation through a frozen face recogniser."""

from __future__ import annotations

import torch
from torch import nn

from maskface.losses.registry import register_loss


@register_loss("identity")
class IdentityLoss(nn.Module):
    """``mean ||phi(output) - phi(target)||^2`` with ``phi`` a frozen recogniser taking [0, 255] RGB chips.

    Gradients flow into ``output`` only; the recogniser's weights never change (they are not parameters of this
    loss, so optimisers and checkpoints leave them alone).
    """

    def __init__(self, recognizer: nn.Module):
        super().__init__()
        recognizer.eval().requires_grad_(False)
        self.__dict__["recognizer"] = recognizer  # not a submodule: not trained, not saved

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference = self.recognizer(target * 255)
        return (self.recognizer(output * 255) - reference).pow(2).sum(dim=1).mean()
