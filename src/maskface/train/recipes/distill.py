"""The distillation recipe: a student learns to embed masked faces, completed by the frozen de-occlusion model,
where the frozen teacher embeds the same faces unmasked.

Losses (each weight in the config, 0 turns a term off): instance-wise, identity-centred softened instance-wise
(temperature, teacher identity centres in a memory bank), RKD distance (pair-wise), RKD angle (triplet-wise), and
an optional ArcFace / CosFace head on the student's embeddings.

On a CPU the student trains from a bank of masked-and-completed faces built once (``bank_variants`` masks per
face, :mod:`maskface.train.completed_bank`), and keeps the stem and the first ``freeze_blocks`` residual blocks
at the teacher's weights: low-level features of a completed face need no relearning, and the step costs a third.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn

from maskface.losses import create_loss
from maskface.models import create_model
from maskface.models.registry import create_from_spec
from maskface.models.weights import save_weights
from maskface.train.completed_bank import CompletedBank, bank_folder, build_completed_bank
from maskface.train.config import ConfigError, TrainConfig
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
    #: the frozen teacher: a registered embedder, or ``name=checkpoint``
    teacher: str = "dlib_resnet_v1"
    #: the student's architecture (a registered embedder); it starts from the teacher's weights when they match
    student: str = "dlib_resnet_v1"
    init_from_teacher: bool = True
    #: residual blocks (after the stem) kept at the starting weights; 0 trains the whole student
    freeze_blocks: int = 7
    #: the frozen de-occlusion model (a registered one, or ``deocclusion_v1=FOLDER`` of training exports);
    #: "none" trains on masked faces as they are
    deocclusion: str = "deocclusion_v1"
    #: complete with the estimated map (as at inference) or the true one
    occlusion_map: Literal["estimated", "true"] = "estimated"
    #: masked copies per face completed once into a cached bank; 0 masks and completes every batch anew
    bank_variants: int = 3
    #: training faces (clean and masked) whose impostor pairs set the shipped thresholds
    calibration_faces: int = 1000
    #: how the shipped recogniser embeds a completed masked face: "student", or "ensemble" (mean of student and
    #: teacher; chosen on AT&T/ORL and Yale, which no model trains or is tested on: docs/models.md)
    masked_embedding: Literal["student", "ensemble"] = "ensemble"


class DistillRecipe(Recipe):
    name = "distill"
    config_class = DistillConfig
    config: DistillConfig

    def build(self, device: torch.device) -> dict[str, nn.Module]:
        config, weights = self.config, self.config.loss
        self.device = device
        self.teacher = create_from_spec(config.teacher).eval().requires_grad_(False).to(device)
        self.deoccluder = None
        if config.deocclusion != "none":
            self.deoccluder = create_from_spec(config.deocclusion).eval().requires_grad_(False).to(device)
        student = create_model(config.student)
        if config.init_from_teacher and config.student == config.teacher.partition("=")[0]:
            student.load_state_dict(self.teacher.state_dict())
        freeze_leading_blocks(student, config.freeze_blocks)
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
            faces = self._faces = masked_training_set(self.config.data, self.data, self.config.train.seed)
            self._dataset = faces if not self.config.bank_variants else self._bank(faces)
        return self._dataset

    def _bank(self, faces) -> CompletedBank:
        """The bank of completed faces, built by the first process while the others wait."""
        config = self.config
        folder = bank_folder(faces, config.bank_variants, self.deoccluder, self.teacher, config.occlusion_map)
        distributed = dist.is_available() and dist.is_initialized()
        if not distributed or dist.get_rank() == 0:
            build_completed_bank(faces, config.bank_variants, self.student_input, self.teacher, self.device, folder,
                                 workers=min(1, config.train.workers))
        if distributed:
            dist.barrier()
        return CompletedBank(folder)

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
        if "input" in batch:  # from the bank
            inputs, target = batch["input"], batch["target"]
        else:
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
        if "input" in batch:  # the bank keeps only what the student sees
            return batch["input"][:6].unsqueeze(0)
        n = min(6, len(batch["clean"]))
        inputs = self.student_input(batch["masked"][:n], batch["occlusion"][:n])
        return torch.stack([batch["clean"][:n], batch["masked"][:n], inputs], dim=1)

    def export(self, engine: Engine) -> list[Path]:
        file = engine.out / "student.safetensors"
        student = engine.modules["student"].eval()
        thresholds = {}
        if self.deoccluder is not None:
            thresholds = self.calibrate(student)
        save_weights(file, student, {"architecture": self.config.student, "teacher": self.config.teacher,
                                     "deocclusion": self.config.deocclusion, "thresholds": thresholds,
                                     "calibration_faces": self.config.calibration_faces,
                                     "masked_embedding": self.config.masked_embedding})
        return [file]

    def calibrate(self, student: nn.Module) -> dict[str, float]:
        """Thresholds of the mask-aware recogniser at target FMRs, on (a spread of) the training faces."""
        import numpy as np

        from maskface.masks.synth import mask_rng
        from maskface.models.deocclusion import tensor_to_chips
        from maskface.models.mask_aware import MaskAwareRecognizer, calibrate_thresholds

        faces = self._faces
        picks = np.unique(np.linspace(0, len(faces) - 1, min(len(faces), self.config.calibration_faces)).round())
        items = [faces.sample(int(i), mask_rng(self.config.train.seed, f"calibrate:{faces.chips.keys[int(i)]}"))
                 for i in picks]
        clean = tensor_to_chips(torch.stack([item["clean"] for item in items]))
        masked = tensor_to_chips(torch.stack([item["masked"] for item in items]))
        labels = np.array([int(item["label"]) for item in items])
        recognizer = MaskAwareRecognizer(self.teacher, student, self.deoccluder,
                                         masked_embedding=self.config.masked_embedding)
        return calibrate_thresholds(recognizer, clean, masked, labels)


def freeze_leading_blocks(student: nn.Module, blocks: int) -> None:
    """Keep the stem and the first ``blocks`` residual blocks of a ResNet-like student (``stem_*``, ``blocks``)
    at their starting weights."""
    if not blocks:
        return
    if not hasattr(student, "blocks") or blocks > len(student.blocks):
        raise ConfigError("freeze_blocks", f"{type(student).__name__} has no {blocks} residual blocks to freeze")
    for name, parameter in student.named_parameters():
        if name.startswith("stem") or (name.startswith("blocks.") and int(name.split(".")[1]) < blocks):
            parameter.requires_grad_(False)
