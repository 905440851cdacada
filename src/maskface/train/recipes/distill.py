"""The distillation recipe: a student learns to embed masked faces, completed by the frozen de-occlusion model,
where the frozen teacher embeds the same faces unmasked.

Losses (each weight in the config, 0 turns a term off): instance-wise, identity-centred softened instance-wise
(temperature, teacher identity centres in a memory bank), RKD distance (pair-wise), RKD angle (triplet-wise), and
an optional ArcFace / CosFace head on the student's embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from maskface.losses import create_loss
from maskface.models import create_model
from maskface.models.weights import save_weights
from maskface.train.config import TrainConfig
from maskface.train.data import ChipDataConfig, masked_training_set
from maskface.train.engine import Engine, Recipe


@dataclass
class DistillLossConfig:
    instance: float = 1.0
    soft: float = 1.0
    temperature: float = 0.1
    centre_momentum: float = 0.9
    rkd_distance: float = 1.0
    rkd_angle: float = 2.0
    margin_head: Literal["arcface", "cosface"] | None = None
    margin_weight: float = 0.1
    margin: float = 0.3
    margin_scale: float = 30.0


@dataclass
class DistillConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    data: ChipDataConfig = field(default_factory=ChipDataConfig)
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    teacher: str = "dlib_resnet_v1"
    #: the student's architecture (a registered embedder); it starts from the teacher's weights when they match
    student: str = "dlib_resnet_v1"
    init_from_teacher: bool = True
    #: the frozen de-occlusion model; "none" trains on masked faces as they are
    deocclusion: str = "deocclusion_v1"
    #: complete with the estimated map (as at inference) or the true one
    occlusion_map: Literal["estimated", "true"] = "estimated"


class DistillRecipe(Recipe):
    name = "distill"
    config_class = DistillConfig
    config: DistillConfig

    def build(self, device: torch.device) -> dict[str, nn.Module]:
        config, weights = self.config, self.config.loss
        self.teacher = create_model(config.teacher, pretrained=True).eval().requires_grad_(False).to(device)
        self.deoccluder = None
        if config.deocclusion != "none":
            self.deoccluder = create_model(config.deocclusion, pretrained=True).eval().requires_grad_(False).to(device)
        student = create_model(config.student, pretrained=config.init_from_teacher and config.student == config.teacher)
        modules = {"student": student}
        dataset = self.dataset()
        self.identities = len(dataset.names)
        self.losses = {"instance": create_loss("instance"), "rkd_distance": create_loss("rkd_distance"),
                       "rkd_angle": create_loss("rkd_angle")}
        dim = self.teacher.fc.out_features
        modules["centres"] = create_loss("identity_centred_soft", num_identities=self.identities, dim=dim,
                                         temperature=weights.temperature, momentum=weights.centre_momentum)
        if weights.margin_head:
            modules["head"] = create_loss(weights.margin_head, num_classes=self.identities, dim=dim,
                                          scale=weights.margin_scale, margin=weights.margin)
        return modules

    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        names = ["student"] + (["head"] if self.config.loss.margin_head else [])
        return {"student": (names, self.config.train.lr)}

    def dataset(self):
        if not hasattr(self, "_dataset"):
            self._dataset = masked_training_set(self.config.data, self.data, self.config.train.seed)
        return self._dataset

    @torch.no_grad()
    def student_input(self, masked: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        """What the student sees: the masked face completed by the frozen de-occlusion model."""
        if self.deoccluder is None:
            return masked
        if self.config.occlusion_map == "true":
            return self.deoccluder(masked, occlusion)[0]
        return self.deoccluder(masked)[0]

    def step(self, batch: dict[str, torch.Tensor], engine: Engine) -> dict[str, float]:
        weights = self.config.loss
        engine.optimizers["student"].zero_grad(set_to_none=True)
        inputs = self.student_input(batch["masked"], batch["occlusion"])
        with torch.no_grad():
            target = self.teacher(batch["clean"] * 255)
        with engine.autocast():
            student = engine.module("student")(inputs * 255).float()
        terms = {}
        if weights.instance:
            terms["instance"] = (weights.instance, self.losses["instance"](student, target))
        if weights.soft:
            centres = engine.modules["centres"]
            centres.update(*engine.gather(target, batch["label"]))  # every process keeps the same centres
            terms["soft"] = (weights.soft, centres(student, target))
        if weights.rkd_distance:
            terms["rkd_distance"] = (weights.rkd_distance, self.losses["rkd_distance"](student, target))
        if weights.rkd_angle:
            terms["rkd_angle"] = (weights.rkd_angle, self.losses["rkd_angle"](student, target))
        if weights.margin_head:
            terms["margin"] = (weights.margin_weight, engine.module("head")(student, batch["label"]))
        total = sum(w * value for w, value in terms.values())
        engine.backward(total)
        engine.optimizer_step("student")
        scalars = {name: value.item() for name, (_, value) in terms.items()}
        scalars["loss"] = total.item()
        scalars["distance_to_teacher"] = (student.detach() - target).norm(dim=1).mean().item()
        return scalars

    def preview(self, batch: dict[str, torch.Tensor], engine: Engine) -> torch.Tensor:
        n = min(6, len(batch["clean"]))
        inputs = self.student_input(batch["masked"][:n], batch["occlusion"][:n])
        return torch.stack([batch["clean"][:n], batch["masked"][:n], inputs], dim=1)

    def export(self, engine: Engine) -> list[Path]:
        file = engine.out / "student.safetensors"
        save_weights(file, engine.modules["student"], {"architecture": self.config.student,
                                                      "teacher": self.config.teacher,
                                                      "deocclusion": self.config.deocclusion})
        return [file]
