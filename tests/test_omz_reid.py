"""OMZ face-reidentification-retail-0095 rebuilt from its OpenVINO IR: parity with OpenVINO's own runtime on real
LFW chips, ONNX export, training, registry and CLI listing, LFW accuracy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from maskface.errors import ModelFileError
from maskface.face.align import umeyama_similarity
from maskface.io.locations import shipped_weights
from maskface.models.omz_reid import IR_FILE, IR_FOLDER
from maskface.models.openvino_ir import read_ir
from maskface.models.registry import create_model, list_models, model_info

IR_XML = shipped_weights(f"{IR_FOLDER}/{IR_FILE}")
YUNET_DIR = Path(__file__).resolve().parents[2] / "shared" / "models" / "yunet"
#: The zoo's five-point template (eyes, nose tip, mouth corners as they appear left to right), for 128x128 chips.
OMZ_TEMPLATE = 128 * np.array([(0.31556875, 0.46157411), (0.68262292, 0.46157411), (0.50026250, 0.64050536),
                               (0.34947188, 0.82469196), (0.65343646, 0.82469196)])


# --- chips: YuNet's five points, a similarity warp to the OMZ template ----------------------------------------------


@pytest.fixture(scope="module")
def yunet():
    model = next(iter(sorted(YUNET_DIR.glob("*.onnx"))), None)
    if model is None:
        pytest.skip(f"no YuNet model in {YUNET_DIR}")
    return cv2.FaceDetectorYN.create(str(model), "", (320, 320), 0.6)


def omz_chip(path: Path, yunet) -> np.ndarray | None:
    """The 128x128 RGB chip of the face nearest the image centre (LFW centres its subject), or None."""
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    yunet.setInputSize((w, h))
    _, faces = yunet.detect(image)
    if faces is None:
        return None
    face = min(faces, key=lambda f: np.hypot(f[0] + f[2] / 2 - w / 2, f[1] + f[3] / 2 - h / 2))
    # YuNet's points run right eye, left eye, nose, right and left mouth corner: image left to right, as the template.
    matrix = umeyama_similarity(face[4:14].reshape(5, 2), OMZ_TEMPLATE)
    return cv2.warpAffine(image, matrix, (128, 128), flags=cv2.INTER_LINEAR)[..., ::-1].copy()


@pytest.fixture(scope="module")
def chips(lfw_sample, yunet):
    """24 real LFW chips, each of a different person."""
    people, out = set(), []
    for path in lfw_sample:
        chip = omz_chip(path, yunet) if path.parent.name not in people else None
        if chip is not None:
            people.add(path.parent.name)
            out.append(chip)
        if len(out) == 24:
            break
    return np.stack(out)


@pytest.fixture(scope="module")
def model():
    return create_model("omz_reid_0095", pretrained=True)


def embed(model: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# --- the PyTorch network ---------------------------------------------------------------------------------------------


def test_a_different_network_is_refused_with_the_layer_named():
    from maskface.models.omz_reid import OmzReidNet, state_from_ir

    graph = read_ir(IR_XML)
    graph.constants[7] = np.zeros((32, 3, 3, 3), np.float16)  # a narrower first convolution
    with pytest.raises(ModelFileError, match=r"layer 9 \(Convolution\) .* stem.0.0.weight wants a Convolution"):
        state_from_ir(graph, OmzReidNet())
    graph = read_ir(IR_XML)
    graph.edges = tuple(e for e in graph.edges if (e.to_layer, e.to_port) != (15, 1))  # a PReLU without its slope
    with pytest.raises(ModelFileError, match="208 constant-fed layers, but the network has 209 tensors"):
        state_from_ir(graph, OmzReidNet())
    graph = read_ir(IR_XML)
    stem = graph.layers[9]  # the first convolution, stride 2 in the file
    graph.layers[9] = dataclasses.replace(stem, data=stem.data | {"strides": "1, 1"})
    with pytest.raises(ModelFileError, match=r"strides \(1, 1\) where the network has \(2, 2\)"):
        state_from_ir(graph, OmzReidNet())


def test_embeddings_match_openvino_on_real_lfw_chips(chips, model):
    """OpenVINO computes the FP16 IR in FP32 when asked to; on CPUs with bf16 units its default is bf16."""
    ov = pytest.importorskip("openvino")
    compiled = ov.Core().compile_model(str(IR_XML), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert len(chips) >= 16
    bgr = np.ascontiguousarray(chips[..., ::-1].transpose(0, 3, 1, 2), np.float32)  # the zoo's input: BGR 0-255
    expected = np.concatenate([compiled(bgr[i : i + 1])[0].reshape(1, 256) for i in range(len(bgr))])
    ours = embed(model, chips)
    assert ours.shape == (len(chips), 256)
    assert np.abs(ours - expected).max() <= 1e-3
    assert cosines(ours, expected).min() >= 0.9999


def test_onnx_export_gives_the_same_embeddings(tmp_path, chips):
    from maskface.apps.export import export_onnx
    from maskface.models.embedder import OnnxEmbedder, load_embedder

    path = export_onnx("omz_reid_0095", tmp_path / "omz.onnx")
    onnx_embedder = OnnxEmbedder(path)
    assert (onnx_embedder.spec.chip, onnx_embedder.spec.size, onnx_embedder.spec.metric) == ("omz", 128, "cosine")
    torch_embedder = load_embedder("omz_reid_0095", device="cpu")
    np.testing.assert_allclose(onnx_embedder.embed_chips(chips[:8]), torch_embedder.embed_chips(chips[:8]), atol=1e-4)


def test_network_trains_as_plain_pytorch(chips):
    """Every weight is a parameter that receives a gradient, and a step of SGD moves the embeddings."""
    model = create_model("omz_reid_0095", pretrained=True).train()
    x = torch.from_numpy(chips[:4]).permute(0, 3, 1, 2).float()
    out = model(x)
    before = out.detach()
    loss = -torch.nn.functional.cosine_similarity(out[:2], out[2:]).mean()  # pull two pairs together
    loss.backward()
    params = dict(model.named_parameters())
    assert len(params) == 63 + 17 + 79 + 48  # convolutions, depthwise convolutions, biases, PReLU slopes
    assert all(p.requires_grad and p.grad is not None for p in params.values())
    assert params["stem.0.0.weight"].grad.abs().sum() > 0 and params["embedding.weight"].grad.abs().sum() > 0
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    with torch.no_grad():
        assert (model(x) - before).abs().max() > 1e-4


def test_registry_entry_and_checkpoints(tmp_path, chips, model):
    from maskface.models.weights import save_weights

    info = model_info("omz_reid_0095")
    assert "omz_reid_0095" in list_models()
    assert (info.spec.chip, info.spec.size, info.spec.padding, info.spec.metric, info.embedding_size) == (
        "omz", 128, 0.0, "cosine", 256)
    assert info.license.startswith("Apache-2.0")
    reference = embed(model, chips[:4])
    assert np.array_equal(embed(create_model("omz_reid_0095", checkpoint=IR_XML), chips[:4]), reference)
    save_weights(tmp_path / "student.safetensors", model, {})  # float16, as the IR stores them: nothing is lost
    restored = create_model("omz_reid_0095", checkpoint=tmp_path / "student.safetensors")
    assert np.array_equal(embed(restored, chips[:4]), reference)
    untrained = create_model("omz_reid_0095")
    assert embed(untrained, chips[:1]).shape == (1, 256)


def test_models_command_lists_it_with_its_licence():
    result = subprocess.run([sys.executable, "-m", "maskface", "models"], capture_output=True, text=True)
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("omz_reid_0095"))
    assert "omz:128 cosine" in line and "licence: Apache-2.0" in line


# --- accuracy ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lfw_fold_accuracy_at_the_registered_threshold(lfw_root, yunet, model):
    """LFW View 2 fold 1 (600 pairs): the threshold was chosen on folds 2-10, so this fold is held out."""
    from maskface.data.lfw import read_pairs

    pairs = [p for p in read_pairs(lfw_root / "pairs.txt") if p.fold == 1]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    chips = {path: omz_chip(path, yunet) for path in paths}
    assert all(chip is not None for chip in chips.values())
    embeddings = dict(zip(paths, embed(model, np.stack([chips[p] for p in paths]))))
    scores = np.array([cosines(embeddings[p.a][None], embeddings[p.b][None])[0] for p in pairs])
    same = np.array([p.same for p in pairs])
    threshold = model_info("omz_reid_0095").spec.threshold
    accuracy = ((scores >= threshold) == same).mean()
    assert len(pairs) == 600 and accuracy >= 0.99
