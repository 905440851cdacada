"""ElasticFace margin-softmax heads (Boutros, Damer, Kirchbuchner, Kuijper, "ElasticFace: Elastic Margin Loss for
Deep Face Recognition", CVPR Workshops 2022, arXiv:2109.09416).

ArcFace and CosFace with a *random* margin: every sample of every batch gets its own margin drawn from
``N(margin, std)``. The "+" variants draw the margins of a batch the same way, then hand them out by how close each
sample is to its class centre: the sample with the highest ``cos(theta_y)`` gets the smallest margin, the one with
the lowest the largest (paper, section III-C: "the samples that are relatively far from their class centre are
pushed with a larger penalty margin"). The authors' code (fdbtrs/ElasticFace, ``utils/losses.py``) indexes the
sorted margins with the descending sort order itself, ``margin[argsort(-cos)]``, where the paper's rule needs its
inverse; the two agree only when that permutation is its own inverse. We follow the paper.

Paper defaults (Table I of the paper; config.py of the authors' code): s = 64; Arc m = 0.5, Cos m = 0.35; sigma
0.05 for both plain variants, 0.0175 for Arc+ and 0.025 for Cos+ (the code's Cos+ uses 0.02).

Each head holds its class centres as a parameter and takes ``seed``: the margins of the ``k``-th call are drawn from
a generator seeded with ``(seed, k)``, and ``k`` is a buffer, so draws are reproducible and a resumed run continues
the same sequence. Samples labelled ``-1`` are left out of the loss (identities the head does not classify).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from maskface.losses.registry import register_loss


def rank_matched_margins(drawn: torch.Tensor, true_cosine: torch.Tensor) -> torch.Tensor:
    """ElasticFace+'s assignment: the drawn margins sorted, the smallest given to the sample with the largest
    ``cos(theta_y)``, the next smallest to the next largest, and so on (ties keep their batch order)."""
    ascending = torch.sort(drawn).values
    order = torch.sort(true_cosine, descending=True, stable=True).indices  # closest to its centre first
    margins = torch.empty_like(drawn)
    margins[order] = ascending
    return margins


class ElasticMarginHead(nn.Module, ABC):
    """Cosine classifier over ``num_classes`` identities with a per-sample margin on the true class."""

    def __init__(self, num_classes: int, dim: int, scale: float, margin: float, std: float, plus: bool = False,
                 seed: int = 0):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"a margin head needs at least one class, got {num_classes}")
        self.scale, self.margin, self.std, self.plus, self.seed = scale, margin, std, plus, seed
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.01)
        self.register_buffer("draws", torch.zeros((), dtype=torch.int64))

    @abstractmethod
    def true_logit(self, cosine: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        """The true class's logit before scaling, from its cosine and the sample's margin."""

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``N x num_classes`` cosines between the embeddings and the class centres."""
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T

    def draw_margins(self, count: int) -> torch.Tensor:
        """``count`` margins from ``N(margin, std)``, the next draw of this head's seeded sequence."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.draws))
        self.draws += 1
        return self.margin + self.std * torch.randn(count, generator=generator, dtype=torch.float64)

    def logits(self, cosine: torch.Tensor, labels: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        """Scaled logits: the true class of sample ``i`` with margin ``margins[i]``, the others plain."""
        true = F.one_hot(labels, cosine.shape[1]).bool()
        with_margin = self.true_logit(cosine, margins.to(cosine)[:, None])
        return torch.where(true, with_margin, cosine) * self.scale

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the samples with a label >= 0 (0 with gradients when there are none)."""
        keep = labels >= 0
        cosine = self.cosines(embeddings[keep])
        labels = labels[keep]
        margins = self.draw_margins(len(labels))
        if not len(labels):
            return cosine.sum()  # an empty sum: 0, still connected to the centres for data parallelism
        if self.plus:
            margins = rank_matched_margins(margins, cosine.detach().gather(1, labels[:, None])[:, 0].double())
        return F.cross_entropy(self.logits(cosine, labels, margins), labels)


@register_loss("elasticface_arc")
class ElasticArcFaceLoss(ElasticMarginHead):
    """Cross-entropy on ``s * cos(theta_y + m_i)``, ``m_i ~ N(margin, std)`` (ElasticFace-Arc); the angle is
    capped at pi so the logit keeps falling as the margin grows (as in this package's ArcFace)."""

    def __init__(self, num_classes: int, dim: int, scale: float = 64.0, margin: float = 0.5, std: float = 0.05,
                 plus: bool = False, seed: int = 0):
        super().__init__(num_classes, dim, scale, margin, std, plus, seed)

    def true_logit(self, cosine: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        # cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m): exact at theta = 0, unlike acos of a clamped cosine
        sine = (1 - cosine.square()).clamp_min(1e-12).sqrt()
        shifted = cosine * torch.cos(margins) - sine * torch.sin(margins)
        return torch.where(cosine < torch.cos(torch.pi - margins), -1.0, shifted)  # theta + m past pi: cos(pi)


@register_loss("elasticface_cos")
class ElasticCosFaceLoss(ElasticMarginHead):
    """Cross-entropy on ``s * (cos(theta_y) - m_i)``, ``m_i ~ N(margin, std)`` (ElasticFace-Cos)."""

    def __init__(self, num_classes: int, dim: int, scale: float = 64.0, margin: float = 0.35, std: float = 0.05,
                 plus: bool = False, seed: int = 0):
        super().__init__(num_classes, dim, scale, margin, std, plus, seed)

    def true_logit(self, cosine: torch.Tensor, margins: torch.Tensor) -> torch.Tensor:
        return cosine - margins


@register_loss("elasticface_arc_plus")
class ElasticArcFacePlusLoss(ElasticArcFaceLoss):
    """ElasticFace-Arc+: the batch's margins go to its samples by closeness to their centres (sigma 0.0175)."""

    def __init__(self, num_classes: int, dim: int, scale: float = 64.0, margin: float = 0.5, std: float = 0.0175,
                 seed: int = 0):
        super().__init__(num_classes, dim, scale, margin, std, plus=True, seed=seed)


@register_loss("elasticface_cos_plus")
class ElasticCosFacePlusLoss(ElasticCosFaceLoss):
    """ElasticFace-Cos+: the batch's margins go to its samples by closeness to their centres (sigma 0.025)."""

    def __init__(self, num_classes: int, dim: int, scale: float = 64.0, margin: float = 0.35, std: float = 0.025,
                 seed: int = 0):
        super().__init__(num_classes, dim, scale, margin, std, plus=True, seed=seed)
