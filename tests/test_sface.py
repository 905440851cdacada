"""SFace rebuilt in PyTorch: parity with onnxruntime on real aligned LFW chips, ONNX export, accuracy, provenance."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from maskface.errors import ModelFileError
from maskface.face.align import ARCFACE_TEMPLATE, umeyama_similarity
from maskface.models.onnx_graph import dequantize_linear, read_onnx_graph, repair_graph_inputs
from maskface.models.registry import create_model, model_info
from maskface.models.sface import SFaceNet, load_sface_onnx

REPO = Path(__file__).resolve().parents[1]
SFACE_DIR = REPO / "src" / "maskface" / "weights" / "sface"
SFACE_ONNX = SFACE_DIR / "face_recognition_sface_2021dec_int8bq.onnx"
YUNET = REPO.parent / "shared" / "models" / "yunet" / "face_detection_yunet_2026may.onnx"

ort.set_default_logger_severity(3)  # the shipped graph lists its initialisers as inputs: one warning each


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (the shared models folder beside the checkout)")
    return path


def arcface_chip(detector: cv2.FaceDetectorYN, path) -> np.ndarray | None:
    """The central face of an image as a 112x112 RGB ArcFace chip, from YuNet's five points (None: no face)."""
    bgr = cv2.imread(str(path))
    height, width = bgr.shape[:2]
    detector.setInputSize((width, height))
    _, faces = detector.detect(bgr)
    if faces is None:
        return None
    centre = np.array([width / 2, height / 2])
    face = min(faces, key=lambda f: np.linalg.norm(f[:2] + f[2:4] / 2 - centre))
    image_to_chip = umeyama_similarity(face[4:14].reshape(5, 2), ARCFACE_TEMPLATE)
    return cv2.warpAffine(np.ascontiguousarray(bgr[..., ::-1]), image_to_chip, (112, 112), flags=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def detector() -> cv2.FaceDetectorYN:
    return cv2.FaceDetectorYN.create(str(require(YUNET)), "", (250, 250), score_threshold=0.6)


@pytest.fixture(scope="module")
def chips(lfw_root, detector) -> np.ndarray:
    """16 aligned chips of 16 different people, spread over LFW."""
    people = sorted(p for p in lfw_root.iterdir() if p.is_dir())[::300]
    found = [arcface_chip(detector, sorted(person.glob("*.jpg"))[0]) for person in people]
    found = [c for c in found if c is not None][:16]
    assert len(found) == 16
    return np.stack(found)


@pytest.fixture(scope="module")
def model() -> SFaceNet:
    return create_model("sface", pretrained=True)


@pytest.fixture(scope="module")
def reference(chips) -> np.ndarray:
    """onnxruntime's embeddings of the chips through the repaired original graph (it dequantises by itself)."""
    session = ort.InferenceSession(repair_graph_inputs(SFACE_ONNX).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = chips.transpose(0, 3, 1, 2).astype(np.float32)
    return np.concatenate([session.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])  # batch fixed at 1


def embed(module: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module.eval()(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_vendored_file_is_unmodified():
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (SFACE_DIR / "SOURCE.md").read_text()).group(1)
    assert hashlib.sha256(SFACE_ONNX.read_bytes()).hexdigest() == recorded
    assert (SFACE_DIR / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_repair_drops_only_the_inputs_no_node_reads():
    original = onnx.load(str(SFACE_ONNX))
    with pytest.raises(Exception, match="Required inputs"):
        x = np.zeros((1, 3, 112, 112), np.float32)
        ort.InferenceSession(original.SerializeToString()).run(None, {"data": x})
    read = {name for node in original.graph.node for name in node.input}
    assert sum(i.name not in read for i in original.graph.input) == 29
    repaired = repair_graph_inputs(SFACE_ONNX)
    assert [i.name for i in repaired.graph.input] == ["data"]
    assert repaired.graph.node == original.graph.node and repaired.graph.initializer == original.graph.initializer
    assert len(original.graph.input) == 175  # the repair worked on a copy


def test_dequantize_linear_per_block_matches_hand_computation():
    x = np.array([[-3, 5, 7, 0, 127], [1, 2, 3, 4, 5]], np.int8)
    scale = np.array([[0.5, 2.0, 0.25], [1.0, 1.0, 4.0]], np.float32)  # blocks of 2 along axis 1: [0:2] [2:4] [4]
    zero = np.array([[1, -1, 0], [0, 2, 5]], np.int8)
    expected = [[-2.0, 2.0, 16.0, 2.0, 31.75], [1.0, 2.0, 1.0, 2.0, 0.0]]
    np.testing.assert_array_equal(dequantize_linear(x, scale, zero, axis=1, block_size=2), expected)
    np.testing.assert_array_equal(dequantize_linear(x, np.float32(0.5)), x.astype(np.float32) * 0.5)
    with pytest.raises(ValueError, match="block"):
        dequantize_linear(x, scale, zero, axis=1, block_size=3)


def test_graph_reads_as_a_float_network():
    graph = read_onnx_graph(SFACE_ONNX)
    assert {n.op_type for n in graph.nodes} == {"Sub", "Mul", "Conv", "BatchNormalization", "PRelu", "Dropout",
                                                 "Flatten", "Gemm"}
    assert graph.inputs == ["data"] and graph.outputs == ["fc1"]
    weights = [graph.constant(n.inputs[1]) for n in graph.nodes if n.op_type in ("Conv", "Gemm")]
    assert len(weights) == 28 and all(w.dtype == np.float32 for w in weights)
    assert weights[-1].shape == (128, 1024 * 7 * 7)


def test_parity_with_onnxruntime_on_real_chips(model, chips, reference):
    for module in (model, model.fused()):
        ours = embed(module, chips)
        assert np.abs(ours - reference).max() <= 1e-3
        assert cosine(ours, reference).min() >= 0.9999


def test_opencv_feeds_the_network_rgb(model, chips, tmp_path):
    """OpenCV's recogniser takes BGR chips and swaps them to RGB: ours takes RGB, so the two agree."""
    path = tmp_path / "sface_repaired.onnx"
    onnx.save(repair_graph_inputs(SFACE_ONNX), str(path))
    recogniser = cv2.FaceRecognizerSF.create(str(path), "")
    opencv = np.concatenate([recogniser.feature(np.ascontiguousarray(c[..., ::-1])) for c in chips[:4]])
    ours = embed(model, chips[:4])
    assert np.abs(ours - opencv).max() <= 1e-3
    assert cosine(ours, opencv).min() >= 0.9999
    swapped = embed(model, np.ascontiguousarray(chips[:4, ..., ::-1]))
    assert cosine(swapped, opencv).min() < 0.99  # the channel order matters, so the check above can fail


def test_onnx_export_matches_torch(chips, tmp_path):
    from maskface.apps.export import export_onnx
    from maskface.models.embedder import OnnxEmbedder, load_embedder

    torch_embedder = load_embedder("sface", device="cpu")
    out = export_onnx("sface", tmp_path / "sface.onnx")
    exported = OnnxEmbedder(out).embed_chips(chips)
    assert exported.shape == (16, 128)
    assert np.abs(exported - torch_embedder.embed_chips(chips)).max() <= 1e-4


def test_registry_entry():
    info = model_info("sface")
    assert (info.spec.chip, info.spec.size, info.spec.padding, info.spec.metric) == ("arcface", 112, 0.0, "cosine")
    assert info.embedding_size == 128 and "Apache-2.0" in info.description


def test_module_is_trainable(model, chips):
    student = copy.deepcopy(model).train()
    out = student(torch.from_numpy(chips[:4]).permute(0, 3, 1, 2).float())
    (1 - torch.nn.functional.cosine_similarity(out[:2], out[2:]).mean()).backward()
    grads = {name: p.grad for name, p in student.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["stem.conv.weight"].abs().sum() > 0 and grads["fc.weight"].abs().sum() > 0


def test_checkpoint_round_trip_and_bad_files(model, chips, tmp_path):
    from safetensors.torch import save_file

    saved = tmp_path / "sface.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(saved))
    np.testing.assert_array_equal(embed(create_model("sface", checkpoint=saved), chips[:2]), embed(model, chips[:2]))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        load_sface_onnx(garbage)
    with pytest.raises(ModelFileError, match="not the SFace graph"):
        load_sface_onnx(require(YUNET))


@pytest.mark.slow
def test_lfw_view2_accuracy(model, lfw_root, detector):
    """400 pairs of View 2 fold 10 (200 matched, 200 mismatched) at the registered threshold: >= 99 %."""
    from maskface.data.lfw import read_pairs

    fold = [p for p in read_pairs(lfw_root / "pairs.txt", lfw_root) if p.fold == 10]
    pairs = [p for p in fold if p.same][:200] + [p for p in fold if not p.same][:200]
    a = [arcface_chip(detector, p.a) for p in pairs]
    b = [arcface_chip(detector, p.b) for p in pairs]
    assert all(c is not None for c in a + b)
    fused = model.fused()
    scores = cosine(embed(fused, np.stack(a)), embed(fused, np.stack(b)))
    accuracy = np.mean((scores >= model_info("sface").spec.threshold) == np.array([p.same for p in pairs]))
    assert accuracy >= 0.99
