"""Two pretrained recognisers as one: the Open Model Zoo re-identification network and SFace, score-averaged.

The two make different mistakes on masked faces (OMZ holds up better when both faces are masked, SFace when one
is), so the mean of their cosines beats either alone (docs/results.md). The ensemble takes one ArcFace-geometry chip
at twice SFace's size; SFace sees it averaged down to 112, and OMZ sees its own 128 template warped out of it by the
fixed similarity between the two templates. Its embedding is both members' unit embeddings side by side, divided
by sqrt 2: its cosine is exactly the mean of the two members' cosines.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskface.models.omz_reid import OmzReidNet, omz_reid_0095
from maskface.models.registry import register_model
from maskface.models.sface import SFaceNet, sface

#: The ensemble's chip: ArcFace's five-point geometry at twice SFace's 112 pixels, so OMZ's 128 chip is cut out of it
#: by downsampling, never by upsampling.
CHIP_SIZE = 224
OMZ_SIZE = 128


def omz_sampling_grid(chip_size: int = CHIP_SIZE, omz_size: int = OMZ_SIZE) -> torch.Tensor:
    """``1 x omz_size x omz_size x 2`` grid for ``grid_sample`` (``align_corners=False``): where each pixel of OMZ's
    template chip lies in an ArcFace-geometry chip of ``chip_size``, through the least-squares similarity between
    the two five-point templates."""
    from maskface.face.align import five_point_template, umeyama_similarity

    to_arcface = umeyama_similarity(five_point_template("omz", omz_size), five_point_template("arcface", chip_size))
    v, u = np.mgrid[0:omz_size, 0:omz_size].astype(np.float64)
    points = np.stack([u, v, np.ones_like(u)], -1) @ to_arcface.T  # pixel centres at whole coordinates, as in cv2
    grid = (2 * points + 1) / chip_size - 1
    return torch.from_numpy(grid[None].astype(np.float32))


class OmzSFaceEnsemble(nn.Module):
    """``N x 3 x 224 x 224`` RGB in [0, 255] (ArcFace geometry) -> ``N x 384`` embeddings whose cosine is the mean of
    OMZ-0095's and SFace's cosines."""

    def __init__(self, omz: OmzReidNet | None = None, sface_net: SFaceNet | None = None):
        super().__init__()
        self.omz = omz if omz is not None else OmzReidNet()
        self.sface = sface_net if sface_net is not None else SFaceNet()
        self.register_buffer("omz_grid", omz_sampling_grid(), persistent=False)

    def members(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's own unit-length embedding of the chips."""
        grid = self.omz_grid.expand(x.shape[0], -1, -1, -1).to(x.dtype)  # x.shape[0]: a dynamic axis in ONNX
        omz_chip = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        sface_chip = F.avg_pool2d(x, 2)
        return F.normalize(self.omz(omz_chip), dim=1), F.normalize(self.sface(sface_chip), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.members(x), dim=1) / math.sqrt(2)

    def fused(self) -> OmzSFaceEnsemble:
        """An inference copy with each member's normalisation folded into its convolutions (where a member offers
        it). Not for training."""
        model = copy.deepcopy(self).eval()
        for name in ("omz", "sface"):
            fuse = getattr(getattr(model, name), "fused", None)
            if callable(fuse):
                setattr(model, name, fuse())
        return model


#: Provisional cosine threshold (the mean of the members' provisional ones), used only where no calibrated
#: per-pair-type threshold applies: weights/pair_thresholds.json holds those.
ENSEMBLE_THRESHOLD = 0.32


@register_model(
    "omz_sface_ensemble",
    "OMZ face-reidentification-retail-0095 and SFace together: the mean of their cosines, from one 224 ArcFace chip",
    chip="arcface", size=CHIP_SIZE, padding=0.0, metric="cosine", threshold=ENSEMBLE_THRESHOLD, embedding_size=384,
    license="Apache-2.0 (Intel Open Model Zoo; OpenCV Zoo)",
)
def omz_sface_ensemble(pretrained: bool = False, checkpoint: str | None = None) -> OmzSFaceEnsemble:
    """``pretrained``: both members' vendored weights. ``checkpoint``: a ``.safetensors`` of this module's weights."""
    if checkpoint is not None:
        from maskface.models.weights import load_state, load_state_into

        model = OmzSFaceEnsemble()
        load_state_into(model, load_state(checkpoint), checkpoint)
        return model.eval()
    if pretrained:
        return OmzSFaceEnsemble(omz_reid_0095(pretrained=True), sface(pretrained=True)).eval()
    return OmzSFaceEnsemble()
