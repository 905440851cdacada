"""The dlib ResNet in PyTorch: parity with dlib on real LFW chips, ONNX export parity, registry and plug-ins."""

from __future__ import annotations

import dlib
import numpy as np
import pytest
import torch

from maskface.io.locations import RESNET, dlib_model_path
from maskface.models.dlib_resnet import Affine, add_zero_padded
from maskface.models.embedder import OnnxEmbedder, TorchEmbedder, load_embedder
from maskface.models.registry import create_model, list_models


@pytest.fixture(scope="module")
def chips(lfw_faces):
    return np.stack([face.chip for _, _, face in lfw_faces[:24]])


def test_zero_padded_add_pads_bottom_right_and_channels():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 1, 4, 4), 10.0)
    out = add_zero_padded(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, 0, 0] == 11 and out[0, 0, 3, 3] == 10  # b alone where a is padded
    assert out[0, 1, 0, 0] == 1 and out[0, 1, 3, 3] == 0  # a alone where b has no channel


def test_embeddings_match_dlib_on_real_lfw_chips(chips, teacher):
    assert len(chips) >= 20
    reference = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET)))
    expected = np.array([np.array(reference.compute_face_descriptor(c)) for c in chips])
    with torch.no_grad():
        ours = teacher(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()
    assert np.abs(ours - expected).max() <= 1e-4
    cosine = (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.99999


def test_embedder_runs_the_fused_network_with_the_same_embeddings(chips, teacher):
    """The embedder folds each affine layer into its convolution: no affine layer is left, the teacher module is
    untouched (training needs its affine layers), and the embeddings agree with the unfused network's."""
    embedder = load_embedder("dlib_resnet_v1", device="cpu")
    assert not any(isinstance(m, Affine) for m in embedder.module.modules())
    assert sum(isinstance(m, Affine) for m in teacher.modules()) == 29  # the stem's and two in each of 14 blocks
    with torch.no_grad():
        unfused = teacher(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()
    assert np.abs(embedder.embed_chips(chips) - unfused).max() <= 1e-5


def test_onnx_export_gives_the_same_embeddings(tmp_path, chips):
    from maskface.apps.export import export_onnx

    path = export_onnx("dlib_resnet_v1", tmp_path / "teacher.onnx")
    onnx_embedder = OnnxEmbedder(path)  # reads teacher.json beside it
    assert onnx_embedder.spec.chip == "dlib" and onnx_embedder.spec.size == 150
    torch_embedder = load_embedder("dlib_resnet_v1")
    np.testing.assert_allclose(onnx_embedder.embed_chips(chips), torch_embedder.embed_chips(chips), atol=1e-4)


def test_registry_lists_and_builds_models():
    assert {"dlib_resnet_v1", "iresnet18", "iresnet50", "iresnet100"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model"):
        create_model("no_such_model")


def test_iresnet_loads_an_insightface_style_checkpoint(tmp_path):
    from maskface.errors import ModelFileError

    source = create_model("iresnet18").eval()
    for module in source.modules():  # give BN layers non-trivial statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    checkpoint = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, checkpoint)
    embedder = load_embedder(f"iresnet18={checkpoint}", device="cpu")
    assert isinstance(embedder, TorchEmbedder) and embedder.spec.chip == "arcface"
    chips = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = source(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()
    np.testing.assert_allclose(embedder.embed_chips(chips), expected, atol=1e-5)
    with pytest.raises(ModelFileError, match="not an IResNet checkpoint"):
        load_embedder(f"iresnet50={checkpoint}")
    with pytest.raises(ModelFileError, match="no weights ship"):
        load_embedder("iresnet50")


def test_embedder_rejects_wrong_chip_shape():
    embedder = load_embedder("dlib_resnet_v1")
    with pytest.raises(ValueError, match="150 x 150 x 3"):
        embedder.embed_chips(np.zeros((2, 112, 112, 3), np.uint8))
