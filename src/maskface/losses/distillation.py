"""Distillation losses between a student's and a frozen teacher's embeddings of the same faces (``N x D``).

* instance-wise: each student embedding matches its teacher embedding;
* identity-centred softened instance-wise: student and teacher agree on how close each face is to every
  identity centre (teacher centres in a memory bank), as distributions softened by a temperature;
* pair-wise (RKD distance) and triplet-wise (RKD angle): the student keeps the teacher's distances and angles
  between faces of the batch (Park et al., Relational Knowledge Distillation, 2019);
* template-level: the student's unit-length template matches the teacher's (Huber et al., MaskInv, FG 2021).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from maskface.losses.registry import register_loss


@register_loss("instance")
class InstanceLoss(nn.Module):
    """``mean_i ||s_i - t_i||^2``: the student reproduces the teacher's embedding of the unmasked face."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return (student - teacher).pow(2).sum(dim=1).mean()


@register_loss("template_kd")
class TemplateKDLoss(nn.Module):
    """``weight * mean((s_i / |s_i| - t_i / |t_i|)^2)`` over every element of the ``N x D`` templates (MaskInv).

    The mean runs over the ``D`` components too, as ``torch.nn.MSELoss`` in the authors' code, so their weights
    (100, and 3000) mean the same here: per face the term is ``weight * |s - t|^2 / D`` of unit vectors.
    """

    def __init__(self, weight: float = 100.0):
        super().__init__()
        self.weight = weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(F.normalize(student, dim=1), F.normalize(teacher, dim=1).detach())


@register_loss("identity_centred_soft")
class IdentityCentredSoftLoss(nn.Module):
    """``tau^2 * KL(softmax(cos(t_i, C) / tau) || softmax(cos(s_i, C) / tau))`` over identity centres ``C``.

    ``C`` is a memory bank of the teacher's mean embedding per identity (``num_identities x D``): call
    :meth:`update` with each batch's teacher embeddings (from every process) before ``forward``. Centres move with
    momentum ``momentum`` (first sight: set, not averaged). It is a buffer: saved in checkpoints, never trained.
    """

    def __init__(self, num_identities: int, dim: int, temperature: float = 0.1, momentum: float = 0.9):
        super().__init__()
        self.temperature, self.momentum = temperature, momentum
        self.register_buffer("centres", torch.zeros(num_identities, dim))
        self.register_buffer("seen", torch.zeros(num_identities, dtype=torch.bool))

    @torch.no_grad()
    def update(self, teacher: torch.Tensor, labels: torch.Tensor) -> None:
        """Move each identity's centre towards the mean teacher embedding of its faces in the batch."""
        for label in labels.unique():
            mean = teacher[labels == label].mean(dim=0)
            if self.seen[label]:
                self.centres[label] = self.momentum * self.centres[label] + (1 - self.momentum) * mean
            else:
                self.centres[label] = mean
                self.seen[label] = True

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        centres = F.normalize(self.centres[self.seen], dim=1)
        target = F.softmax(F.normalize(teacher, dim=1) @ centres.T / self.temperature, dim=1)
        log_student = F.log_softmax(F.normalize(student, dim=1) @ centres.T / self.temperature, dim=1)
        return F.kl_div(log_student, target, reduction="batchmean") * self.temperature**2


def _pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    squared = (x.unsqueeze(0) - x.unsqueeze(1)).pow(2).sum(dim=2)
    return squared.clamp_min(1e-12).sqrt() * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))


@register_loss("rkd_distance")
class RKDDistanceLoss(nn.Module):
    """Huber loss between the student's and teacher's pairwise distances, each divided by its mean distance
    (so the student's scale is free)."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        off_diagonal = ~torch.eye(len(student), dtype=torch.bool, device=student.device)
        with torch.no_grad():
            t = _pairwise_distances(teacher)
            t = t / t[off_diagonal].mean()
        s = _pairwise_distances(student)
        s = s / s[off_diagonal].mean()
        return F.smooth_l1_loss(s[off_diagonal], t[off_diagonal])


def _angles(x: torch.Tensor) -> torch.Tensor:
    """``A[j, i, k] = cos`` of the angle at ``x_j`` between ``x_i`` and ``x_k``."""
    edges = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)  # edges[j, i] = unit(x_i - x_j)
    return torch.bmm(edges, edges.transpose(1, 2))


@register_loss("rkd_angle")
class RKDAngleLoss(nn.Module):
    """Huber loss between the cosines of the angles that every triplet of faces forms, student vs teacher
    (invariant to the student's scale and translation)."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t = _angles(teacher)
        return F.smooth_l1_loss(_angles(student).flatten(), t.flatten())


class _MarginHead(nn.Module, ABC):
    """Cosine classifier over ``num_classes`` identities with an additive margin on the true class; samples
    labelled ``-1`` are left out."""

    def __init__(self, num_classes: int, dim: int, scale: float = 30.0, margin: float = 0.3):
        super().__init__()
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.01)

    @abstractmethod
    def _with_margin(self, cosine: torch.Tensor) -> torch.Tensor:
        """The true class's logit (before scaling) from its cosine."""

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = labels >= 0
        cosine = F.normalize(embeddings[keep], dim=1) @ F.normalize(self.weight, dim=1).T
        labels = labels[keep]
        if not len(labels):
            return cosine.sum()  # an empty sum: 0, still connected to the centres for data parallelism
        true = F.one_hot(labels, cosine.shape[1]).bool()
        logits = torch.where(true, self._with_margin(cosine), cosine) * self.scale
        return F.cross_entropy(logits, labels)


@register_loss("arcface")
class ArcFaceLoss(_MarginHead):
    """Cross-entropy on ``s * cos(theta + m)`` for the true identity (Deng et al., ArcFace)."""

    def _with_margin(self, cosine: torch.Tensor) -> torch.Tensor:
        theta = torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))
        return torch.cos((theta + self.margin).clamp(max=torch.pi))


@register_loss("cosface")
class CosFaceLoss(_MarginHead):
    """Cross-entropy on ``s * (cos(theta) - m)`` for the true identity (Wang et al., CosFace)."""

    def _with_margin(self, cosine: torch.Tensor) -> torch.Tensor:
        return cosine - self.margin
