"""The occlusion-estimator recipe: a small U-Net learns the occlusion map of synthetic masks (BCE + Dice)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from maskface.data.masked_chips import OnlineMaskConfig
from maskface.losses import create_loss
from maskface.models.deocclusion import EstimatorConfig, OcclusionEstimator
from maskface.models.weights import save_weights
from maskface.train.config import TrainConfig
from maskface.train.data import ChipDataConfig, masked_training_set
from maskface.train.engine import Engine, Recipe


def _estimator_masks() -> OnlineMaskConfig:
    # Some faces without a mask (the estimator must say "none"), and alignment jitter as on detected real faces.
    return OnlineMaskConfig(unmasked_fraction=0.2, shift=4.0, rotate=6.0, scale=0.06)


@dataclass
class OcclusionConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    data: ChipDataConfig = field(default_factory=lambda: ChipDataConfig(masks=_estimator_masks()))
    model: EstimatorConfig = field(default_factory=EstimatorConfig)
    dice_weight: float = 1.0


class OcclusionRecipe(Recipe):
    name = "occlusion"
    config_class = OcclusionConfig
    config: OcclusionConfig

    def build(self, device: torch.device) -> dict[str, nn.Module]:
        self.loss = create_loss("bce_dice", dice_weight=self.config.dice_weight)
        return {"estimator": OcclusionEstimator(self.config.model)}

    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        return {"estimator": (["estimator"], self.config.train.lr)}

    def dataset(self):
        return masked_training_set(self.config.data, self.data, self.config.train.seed)

    def step(self, batch: dict[str, torch.Tensor], engine: Engine) -> dict[str, float]:
        engine.optimizers["estimator"].zero_grad(set_to_none=True)
        with engine.autocast():
            logits = engine.module("estimator")(batch["masked"])
            loss = self.loss(logits.float(), batch["occlusion"])
        engine.backward(loss)
        engine.optimizer_step("estimator")
        predicted = logits.detach() > 0
        target = batch["occlusion"] > 0.5
        union = (predicted | target).sum().clamp_min(1)
        return {"loss": loss.item(), "iou": ((predicted & target).sum() / union).item()}

    def preview(self, batch: dict[str, torch.Tensor], engine: Engine) -> torch.Tensor:
        n = min(6, len(batch["masked"]))
        masked, target = batch["masked"][:n], batch["occlusion"][:n]
        estimate = torch.sigmoid(engine.modules["estimator"](masked))
        return torch.stack([masked, target.expand_as(masked), estimate.expand_as(masked)], dim=1)

    def export(self, engine: Engine) -> list[Path]:
        file = engine.out / "occlusion_estimator.safetensors"
        save_weights(file, engine.modules["estimator"], self.config.model)
        return [file]
