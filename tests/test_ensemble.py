"""The OMZ + SFace ensemble: its OMZ chip is the template warp cv2 would cut, and its cosine is the members' mean."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskface.face.align import five_point_template, umeyama_similarity
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.images import load_image
from maskface.models.ensemble import CHIP_SIZE, OMZ_SIZE, omz_sampling_grid
from maskface.models.registry import create_model, model_info


def test_grid_cuts_the_chip_cv2_would_cut():
    """A smooth random picture warped by the grid equals cv2.warpAffine with the same similarity (inside it)."""
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.uniform(0, 255, (CHIP_SIZE, CHIP_SIZE, 3)).astype(np.float32), (0, 0), 3)
    omz_to_chip = umeyama_similarity(five_point_template("omz", OMZ_SIZE), five_point_template("arcface", CHIP_SIZE))
    expected = cv2.warpAffine(picture, omz_to_chip, (OMZ_SIZE, OMZ_SIZE),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    tensor = torch.from_numpy(picture).permute(2, 0, 1)[None]
    warped = F.grid_sample(tensor, omz_sampling_grid(), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    assert np.abs(warped.numpy() - expected)[2:-2, 2:-2].max() < 0.05  # cv2 rounds its coefficients to 1/32


def test_registered_for_a_224_arcface_chip():
    spec = model_info("omz_sface_ensemble").spec
    assert (spec.chip, spec.size, spec.metric) == ("arcface", 224, "cosine")


@pytest.mark.slow
def test_cosine_is_the_mean_of_the_members_on_their_own_chips(lfw_sample):
    """On real LFW faces, the ensemble's cosine is within 0.02 of the mean of OMZ's and SFace's cosines on chips
    the front end cuts for each, and its embedding has unit length."""
    paths = lfw_sample[:24]

    def chips(chip: str, size: int) -> torch.Tensor:
        pipeline = FacePipeline(FaceConfig(chip=chip, size=size, padding=0.0))
        cut = np.stack([pipeline.align(load_image(p), str(p)).chip for p in paths])
        return torch.from_numpy(cut).permute(0, 3, 1, 2).float()

    with torch.inference_mode():
        ensemble = create_model("omz_sface_ensemble", pretrained=True).eval()(chips("arcface", CHIP_SIZE))
        omz = F.normalize(create_model("omz_reid_0095", pretrained=True).eval()(chips("omz", OMZ_SIZE)), dim=1)
        sface = F.normalize(create_model("sface", pretrained=True).eval()(chips("arcface", 112)), dim=1)
    assert torch.allclose(ensemble.norm(dim=1), torch.ones(len(paths)), atol=1e-5)
    mean_of_members = (omz @ omz.T + sface @ sface.T) / 2
    assert (ensemble @ ensemble.T - mean_of_members).abs().max() < 0.02
