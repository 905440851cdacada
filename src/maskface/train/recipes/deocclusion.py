"""The de-occlusion recipe: a gated-convolution generator completes masked faces, trained with masked L1, hinge
adversarial losses from a global and a local discriminator, and identity through the frozen teacher."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskface.losses import create_loss
from maskface.models import create_model
from maskface.models.deocclusion import Generator, GeneratorConfig, PatchDiscriminator, composite, mask_crops
from maskface.models.weights import save_weights
from maskface.train.config import TrainConfig
from maskface.train.data import ChipDataConfig, masked_training_set
from maskface.train.engine import Engine, Recipe


@dataclass
class DeocclusionLossConfig:
    """Weights of each term of the generator's loss (0 turns a term off)."""

    l1: float = 1.0
    hole_weight: float = 6.0
    adversarial: float = 0.01
    identity: float = 0.5
    #: discriminator learning rate, relative to ``train.lr``
    d_lr_factor: float = 1.0


@dataclass
class DeocclusionConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    data: ChipDataConfig = field(default_factory=ChipDataConfig)
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    loss: DeocclusionLossConfig = field(default_factory=DeocclusionLossConfig)
    #: the frozen recogniser of the identity loss
    teacher: str = "dlib_resnet_v1"


def mean_chip(chips, batch: int = 512) -> torch.Tensor:
    """The mean of a chip set (``1 x 3 x H x W`` in [0, 1]), averaged over it and its mirror image."""
    total = np.zeros(chips.chip(0).shape, np.float64)
    for start in range(0, len(chips), batch):
        total += np.stack([chips.chip(i) for i in range(start, min(start + batch, len(chips)))]).sum(axis=0)
    mean = total / len(chips)
    mean = (mean + mean[:, ::-1]) / 2
    return torch.from_numpy(mean.transpose(2, 0, 1)[None].copy()).float() / 255


class DeocclusionRecipe(Recipe):
    name = "deocclusion"
    config_class = DeocclusionConfig
    config: DeocclusionConfig

    def build(self, device: torch.device) -> dict[str, nn.Module]:
        loss = self.config.loss
        self.l1 = create_loss("masked_l1", hole_weight=loss.hole_weight)
        self.d_loss = create_loss("hinge_discriminator")
        self.g_loss = create_loss("hinge_generator")
        self.identity = None
        if loss.identity:
            self.identity = create_loss("identity", recognizer=create_model(self.config.teacher, pretrained=True)
                                        .to(device))
        generator = Generator(self.config.model)
        if self.config.model.mean_face_prior:
            generator.prior.copy_(mean_chip(self.dataset().chips))
        return {"generator": generator, "global_d": PatchDiscriminator(), "local_d": PatchDiscriminator(depth=3)}

    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        lr = self.config.train.lr
        return {"g": (["generator"], lr), "d": (["global_d", "local_d"], lr * self.config.loss.d_lr_factor)}

    def dataset(self):
        if not hasattr(self, "_dataset"):
            self._dataset = masked_training_set(self.config.data, self.data, self.config.train.seed)
        return self._dataset

    def _discriminate(self, engine: Engine, images: torch.Tensor, occlusion: torch.Tensor) -> list[torch.Tensor]:
        crops, crop_maps = mask_crops(images, occlusion)
        return [engine.module("global_d")(images, occlusion), engine.module("local_d")(crops, crop_maps)]

    def step(self, batch: dict[str, torch.Tensor], engine: Engine) -> dict[str, float]:
        weights = self.config.loss
        clean, masked, occlusion = batch["clean"], batch["masked"], batch["occlusion"]
        for optimizer in engine.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        with engine.autocast():
            generated = engine.module("generator")(masked, occlusion)
            completed = composite(masked, generated, occlusion)
        scalars = {}
        if weights.adversarial:
            n = len(clean)
            with engine.autocast():
                scores = self._discriminate(engine, torch.cat([clean, completed.detach()]),
                                            torch.cat([occlusion, occlusion]))
                d_loss = sum(self.d_loss(s[:n], s[n:]) for s in scores)
            engine.backward(d_loss)
            engine.optimizer_step("d")
            scalars["d_hinge"] = d_loss.item()
        with engine.autocast():
            l1 = self.l1(generated, clean, occlusion)
            total = weights.l1 * l1
            scalars["l1"] = l1.item()
            if weights.adversarial:
                adversarial = sum(self.g_loss(s) for s in self._discriminate(engine, completed, occlusion))
                total = total + weights.adversarial * adversarial
                scalars["g_hinge"] = adversarial.item()
            if self.identity is not None:
                identity = self.identity(completed.float(), clean)
                total = total + weights.identity * identity
                scalars["identity"] = identity.item()
        engine.backward(total)
        engine.optimizer_step("g")
        scalars["loss"] = total.item()
        return scalars

    def preview(self, batch: dict[str, torch.Tensor], engine: Engine) -> torch.Tensor:
        n = min(6, len(batch["clean"]))
        clean, masked, occlusion = batch["clean"][:n], batch["masked"][:n], batch["occlusion"][:n]
        completed = composite(masked, engine.modules["generator"](masked, occlusion), occlusion)
        return torch.stack([clean, masked, completed, occlusion.expand_as(clean)], dim=1)

    def export(self, engine: Engine) -> list[Path]:
        file = engine.out / "deocclusion_generator.safetensors"
        save_weights(file, engine.modules["generator"], self.config.model)
        return [file]
