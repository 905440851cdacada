"""The MaskInv recipe (Huber, Boutros, Kirchbuchner, Damer, "Mask-invariant Face Recognition through Template-level
Knowledge Distillation", FG 2021): a student learns to give a masked face the template the frozen teacher gives the
same face unmasked.

* **Data.** The student sees each training face with a new synthetic mask with probability
  ``1 - data.masks.unmasked_fraction`` (0.5) and unmasked otherwise; the teacher always sees the unmasked original,
  a separate array that masking never writes to (the authors' code masked the batch in place, so their teacher saw
  the masks too). Chips are cut in the teacher's geometry (its registry spec).
* **Loss.** ``head_weight * ElasticFace(student, identity) + template_kd * MSE(unit student, unit teacher)``;
  ``head_weight: 0`` is template distillation alone.
* **Student.** The teacher's architecture, started from the teacher's weights.
* **Few images per identity.** Only identities with at least ``loss.min_images`` training images are classes of the
  margin head; the others are labelled -1, which the head leaves out, and train through the template term only
  (docs/training.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskface.data.masked_chips import MaskedChips, OnlineMaskConfig
from maskface.losses import create_loss
from maskface.models.registry import ModelInfo, create_from_spec, create_model, model_info
from maskface.models.weights import save_weights
from maskface.train.config import ConfigError, TrainConfig
from maskface.train.data import ChipDataConfig, chip_face, masked_training_set
from maskface.train.engine import Engine, Recipe

MarginHead = Literal["elasticface_arc", "elasticface_cos", "elasticface_arc_plus", "elasticface_cos_plus", "arcface",
                     "cosface"]


def _maskinv_train() -> TrainConfig:
    # The paper's optimiser: SGD, momentum 0.9, weight decay 5e-4, gradient norm clipped at 5.
    return TrainConfig(optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=5e-4, grad_clip=5.0)


def _student_sees_half_masked() -> ChipDataConfig:
    return ChipDataConfig(masks=OnlineMaskConfig(unmasked_fraction=0.5))


@dataclass
class MaskInvModelConfig:
    #: the frozen teacher: a registered embedder, or ``name=checkpoint``; the student is the same architecture
    teacher: str = "omz_reid_0095"
    #: start the student from the teacher's weights (MaskInv); false starts it from the architecture's own init
    init_from_teacher: bool = True


@dataclass
class MaskInvLossConfig:
    #: the margin head on the student's embeddings (ElasticFace-Arc in MaskInv; ArcFace / CosFace as baselines)
    head: MarginHead = "elasticface_arc"
    #: weight of the head's cross-entropy; 0 trains template distillation alone (no head at all)
    head_weight: float = 1.0
    scale: float = 64.0
    #: the margin's mean; null takes the head's paper value (Arc 0.5, Cos 0.35)
    margin: float | None = None
    #: the margin's standard deviation (ElasticFace heads); null takes the paper's (0.05; Arc+ 0.0175, Cos+ 0.025)
    margin_std: float | None = None
    #: lambda of the template term, MSE of unit templates averaged over their components (MaskInv: 100, and 3000)
    template_kd: float = 100.0
    #: identities with fewer training images are not classes of the head (they train the template term only)
    min_images: int = 2
    #: the head's class centres at the start: each class's mean unit teacher template of its unmasked chips, or
    #: random (the authors' code); a random head's first gradients pull a teacher-initialised student anywhere
    head_init: Literal["teacher", "random"] = "teacher"


@dataclass
class MaskInvConfig:
    train: TrainConfig = field(default_factory=_maskinv_train)
    data: ChipDataConfig = field(default_factory=_student_sees_half_masked)
    model: MaskInvModelConfig = field(default_factory=MaskInvModelConfig)
    loss: MaskInvLossConfig = field(default_factory=MaskInvLossConfig)


def head_labels(labels: np.ndarray, min_images: int) -> tuple[np.ndarray, int]:
    """Per sample, its identity's class of the margin head, or -1 when the identity has fewer than ``min_images``
    samples; and the number of classes. Classes keep the identities' order."""
    counts = np.bincount(labels, minlength=labels.max() + 1 if len(labels) else 0)
    kept = counts >= min_images
    table = np.full(len(counts), -1, np.int64)
    table[kept] = np.arange(int(kept.sum()))
    return table[labels], int(kept.sum())


class MaskInvRecipe(Recipe):
    name = "maskinv"
    config_class = MaskInvConfig
    config: MaskInvConfig

    def build(self, device: torch.device) -> dict[str, nn.Module]:
        config, loss = self.config, self.config.loss
        self.architecture, self.teacher_info = _teacher_architecture(config.model.teacher)
        self.face = chip_face(self.teacher_info.spec)
        self.teacher = create_from_spec(config.model.teacher).eval().requires_grad_(False).to(device)
        student = create_model(self.architecture)
        if config.model.init_from_teacher:
            student.load_state_dict(self.teacher.state_dict())
        self.template = create_loss("template_kd", weight=loss.template_kd)
        dataset = self.dataset()
        classes, count = head_labels(dataset.labels, loss.min_images)
        self.classes = torch.from_numpy(classes)
        modules = {"student": student}
        if loss.head_weight:
            if not count:
                raise ConfigError("loss.min_images", f"no identity of the training set has {loss.min_images} "
                                                     "images: the margin head would have no class")
            modules["head"] = self._head(count)
            if loss.head_init == "teacher":
                modules["head"].weight.data.copy_(self._teacher_centres(dataset, classes, count, device))
        return modules

    def _head(self, classes: int) -> nn.Module:
        loss = self.config.loss
        options = {"scale": loss.scale}
        if loss.margin is not None:
            options["margin"] = loss.margin
        if loss.head.startswith("elasticface"):
            options["seed"] = self.config.train.seed
            if loss.margin_std is not None:
                options["std"] = loss.margin_std
        elif loss.margin is None:
            options["margin"] = 0.5 if loss.head == "arcface" else 0.35
        return create_loss(loss.head, num_classes=classes, dim=self.teacher_info.embedding_size, **options)

    @torch.no_grad()
    def _teacher_centres(self, dataset: MaskedChips, classes: np.ndarray, count: int, device: torch.device,
                         batch_size: int = 64) -> torch.Tensor:
        """Each head class's mean unit teacher template over its unmasked, unflipped training chips, unit length."""
        sums = torch.zeros(count, self.teacher_info.embedding_size, dtype=torch.float64)
        members = np.flatnonzero(classes >= 0)
        for start in range(0, len(members), batch_size):
            rows = members[start:start + batch_size]
            chips = np.stack([dataset.chips.chip(int(i)) for i in rows])
            pixels = torch.from_numpy(chips).permute(0, 3, 1, 2).float().to(device)
            templates = F.normalize(self.teacher(pixels).float(), dim=1).double().cpu()
            sums.index_add_(0, torch.from_numpy(classes[rows]), templates)
        return F.normalize(sums, dim=1).float()

    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        groups = {"student": (["student"], self.config.train.lr)}
        if self.config.loss.head_weight:
            groups["head"] = (["head"], self.config.train.lr)
        return groups

    def dataset(self) -> MaskedChips:
        if not hasattr(self, "_dataset"):
            self._dataset = masked_training_set(self.config.data, self.data, self.config.train.seed, face=self.face)
        return self._dataset

    def step(self, batch: dict[str, torch.Tensor], engine: Engine) -> dict[str, float]:
        loss = self.config.loss
        with torch.no_grad():
            target = self.teacher(batch["clean"] * 255).float()  # always the unmasked original
        with engine.autocast():
            student = engine.module("student")(batch["masked"] * 255).float()  # masked or not, as drawn
        terms = {"template": self.template(student, target)}
        if loss.head_weight:
            labels = self.classes.to(batch["label"].device)[batch["label"]]
            terms["margin"] = loss.head_weight * engine.module("head")(student, labels)
        total = sum(terms.values())
        engine.backward(total)
        for name in self.optimizer_groups():
            engine.optimizer_step(name)
        scalars = {name: value.item() for name, value in terms.items()}
        scalars["loss"] = total.item()
        scalars["cosine_to_teacher"] = F.cosine_similarity(student.detach(), target).mean().item()
        scalars["masked_fraction"] = (batch["occlusion"].flatten(1).amax(1) > 0).float().mean().item()
        return scalars

    def preview(self, batch: dict[str, torch.Tensor], engine: Engine) -> torch.Tensor:
        n = min(6, len(batch["clean"]))
        return torch.stack([batch["clean"][:n], batch["masked"][:n]], dim=1)  # teacher's input, student's input

    def export(self, engine: Engine) -> list[Path]:
        file = engine.out / "student.safetensors"
        loss = self.config.loss
        save_weights(file, engine.modules["student"].eval(), {
            "method": "maskinv", "architecture": self.architecture, "teacher": self.config.model.teacher,
            "head": loss.head if loss.head_weight else None, "head_weight": loss.head_weight,
            "template_kd": loss.template_kd, "unmasked_fraction": self.config.data.masks.unmasked_fraction})
        return [file]


def _teacher_architecture(teacher: str) -> tuple[str, ModelInfo]:
    """The registry name of a teacher spec (``name`` or ``name=checkpoint``) and its registry entry."""
    name = teacher.partition("=")[0]
    try:
        info = model_info(name)
    except KeyError as exc:
        raise ConfigError("model.teacher", str(exc.args[0])) from None
    if info.spec is None:
        raise ConfigError("model.teacher", f"{name} is a {info.kind} model, not a face embedder")
    return name, info

