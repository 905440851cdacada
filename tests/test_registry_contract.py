"""The contract every registered embedder keeps, tested on each one the registry lists (new ones join by themselves).

On real LFW chips cut with the model's own chip geometry, one of them wearing a synthetic mask: embeddings of the
registered size as float32, the same every time, a chip's embedding the same alone as in a batch, and an ONNX
export that gives the same embeddings as PyTorch (or, for a model registered with ``onnx=False``, a clear refusal).
Models without shipped weights (bring-your-own insightface backbones) are tested with their initial weights: the
contract is the architecture's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from maskface.apps.export import export_embedder
from maskface.errors import ModelFileError
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.masks.synth import MaskSynthesizer, mask_key
from maskface.models import create_model, list_models, model_info
from maskface.models.embedder import OnnxEmbedder, TorchEmbedder
from maskface.models.registry import ModelInfo

pytestmark = pytest.mark.slow  # every registered network on real chips, some of them 100 layers deep

EMBEDDERS = [name for name in list_models() if model_info(name).kind == "embedder"]
#: which photos of the sample wear a synthetic mask (the mask-aware model must take both of its paths in one batch)
MASKED = (False, True, False)


@dataclass
class Contract:
    name: str
    info: ModelInfo
    embedder: TorchEmbedder
    chips: np.ndarray
    batch: np.ndarray  # embed_chips of all chips at once
    raw: torch.Tensor  # the network's own output for the same batch, as the embedder feeds it

    @property
    def scale(self) -> float:
        """Tolerances are relative to the embeddings' magnitude (unit-scale for dlib's, larger for raw backbones)."""
        return max(1.0, float(np.abs(self.batch).max()))


@pytest.fixture(scope="module")
def photos(lfw_faces):
    """Three real LFW photos with their 68 landmarks and detection; the second wears a synthetic mask, drawn on the
    photo and placed by the unmasked face's landmarks."""
    synthesizer = MaskSynthesizer(seed=0)
    chosen = []
    for (path, image, face), masked in zip(lfw_faces[:3], MASKED):
        if masked:
            image = synthesizer(image, face.landmarks, key=mask_key(path)).image
        chosen.append((image, face))
    return chosen


def build(name: str) -> torch.nn.Module:
    """The model with its shipped or converted weights, or with its initial weights when none ship."""
    try:
        return create_model(name, pretrained=True)
    except ModelFileError:
        return create_model(name, pretrained=False)


@pytest.fixture(scope="module", params=EMBEDDERS)
def contract(request, photos) -> Contract:
    name = request.param
    info = model_info(name)
    spec = info.spec
    cutter = FacePipeline(FaceConfig(chip=spec.chip, size=spec.size, padding=spec.padding, mask_robust=False))
    chips = np.stack([cutter.align_with_landmarks(image, face.landmarks, face.detection).chip
                      for image, face in photos])
    embedder = TorchEmbedder(build(name), spec, batch_size=len(chips))
    with torch.inference_mode():
        raw = embedder.module(embedder.as_tensor(chips))
    return Contract(name, info, embedder, chips, embedder.embed_chips(chips), raw)


def test_embeddings_have_the_registered_size_and_float32(contract):
    batch = contract.batch
    assert contract.chips.shape == (3, contract.info.spec.size, contract.info.spec.size, 3)
    assert batch.shape == (3, contract.info.embedding_size) and batch.dtype == np.float32
    assert np.isfinite(batch).all()
    assert contract.raw.dtype == torch.float32 and tuple(contract.raw.shape) == batch.shape  # uncast
    gaps = [np.abs(batch[i] - batch[j]).max() for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 1e-3 * contract.scale  # three different faces, three different embeddings


def test_embeddings_are_deterministic(contract):
    """Two passes over the same batch (the network's and the embedder's) give the same embeddings."""
    np.testing.assert_allclose(contract.raw.cpu().numpy(), contract.batch, rtol=0, atol=1e-6 * contract.scale)


def test_a_chip_alone_embeds_as_in_a_batch(contract):
    module = contract.embedder.module
    if hasattr(module, "embed_with_masks"):  # the mask-aware model: the batch must mix its two paths
        with torch.inference_mode():
            _, masked = module.embed_with_masks(contract.embedder.as_tensor(contract.chips))
        assert tuple(masked.cpu().tolist()) == MASKED
    alone = np.concatenate([contract.embedder.embed_chips(chip[None]) for chip in contract.chips])
    np.testing.assert_allclose(alone, contract.batch, rtol=0, atol=1e-4 * contract.scale)


def test_onnx_export_gives_the_same_embeddings(contract, tmp_path):
    path = tmp_path / f"{contract.name}.onnx"
    if not contract.info.onnx:
        with pytest.raises(ModelFileError, match="cannot be exported to ONNX"):
            export_embedder(contract.embedder, path)
        assert not path.exists()
        return
    export_embedder(contract.embedder, path)
    try:
        exported = OnnxEmbedder(path)  # fed as the .json beside it says
        assert (exported.spec.chip, exported.spec.size, exported.spec.metric) == (
            contract.info.spec.chip, contract.info.spec.size, contract.info.spec.metric)
        embeddings = exported.embed_chips(contract.chips)
    finally:
        path.unlink()  # a 100-layer backbone exports to 260 MB
    assert embeddings.shape == contract.batch.shape
    np.testing.assert_allclose(embeddings, contract.batch, rtol=0, atol=1e-4 * contract.scale)
