"""Runtimes: device strings parse to the backend they name, the OpenVINO backend embeds real chips as PyTorch does
(same fingerprint, so caches and galleries are shared), its converted model is cached whole, and bf16 stays close."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maskface.errors import ModelFileError
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.images import load_image
from maskface.models.embedder import TorchEmbedder, load_embedder
from maskface.models.openvino_embedder import OpenVinoEmbedder
from maskface.models.runtime import cpu_has_bf16, parse_runtime

PLAIN_RECOGNISERS = ("dlib_resnet_v1", "omz_reid_0095", "sface", "omz_sface_ensemble")


@pytest.mark.parametrize(("device", "backend", "precision", "text"), [
    ("cpu", "torch", "fp32", "cpu"),
    ("openvino", "openvino", "fp32", "openvino"),
    ("openvino+bf16", "openvino", "bf16", "openvino+bf16"),
    ("cpu+bf16", "torch", "bf16", "cpu+bf16"),
])
def test_device_strings_name_their_runtime(device, backend, precision, text):
    runtime = parse_runtime(device)
    assert (runtime.backend, runtime.precision, runtime.device.type, str(runtime), runtime.chosen) == (
        backend, precision, "cpu", text, True)


def test_no_device_is_openvino_on_a_cpu_machine():
    if torch.cuda.is_available():
        pytest.skip("CUDA machine: the default is CUDA")
    runtime = parse_runtime(None)
    assert (runtime.backend, runtime.chosen) == ("openvino", False)


@pytest.mark.parametrize(("device", "reason"), [
    ("cpu+fp16", "unknown precision 'fp16'"), ("gpu", "unknown device 'gpu'"), ("tpu:0", "unknown device"),
])
def test_bad_device_strings_say_why(device, reason):
    with pytest.raises(ValueError, match=reason):
        parse_runtime(device)


@pytest.fixture(scope="module")
def arcface_chips(lfw_sample):
    """16 real LFW faces (one per person) cut as 224 ArcFace chips by the default front end."""
    pipeline = FacePipeline(FaceConfig(chip="arcface", size=224, select="center"))
    chips, people = [], set()
    for path in lfw_sample:
        if path.parent.name not in people:
            people.add(path.parent.name)
            chips.append(pipeline.align(load_image(path), str(path)).chip)
        if len(chips) == 16:
            break
    return np.stack(chips)


def _resized(chips: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(chip, (size, size), interpolation=cv2.INTER_AREA) for chip in chips])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
@pytest.mark.parametrize("name", PLAIN_RECOGNISERS)
def test_openvino_embeds_real_chips_as_pytorch_does(name, arcface_chips, tmp_path, monkeypatch):
    """Parity within 1e-4 absolute and cosine >= 0.9999, the same fingerprint, and the converted model cached
    whole (no staging folder left) and reused by the next load."""
    monkeypatch.setenv("MASKFACE_CACHE", str(tmp_path))
    fast, reference = load_embedder(name, device="openvino"), load_embedder(name, device="cpu")
    assert isinstance(fast, OpenVinoEmbedder) and isinstance(reference, TorchEmbedder)
    chips = _resized(arcface_chips, fast.spec.size)
    ours, theirs = fast.embed_chips(chips), reference.embed_chips(chips)
    assert np.abs(ours - theirs).max() < 1e-4
    assert _cosines(ours, theirs).min() >= 0.9999
    assert fast.fingerprint == reference.fingerprint
    cached = list((tmp_path / "openvino").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith(f"{name}-{fast.fingerprint}-")
    assert sorted(p.name for p in cached[0].iterdir()) == ["model.bin", "model.xml"]
    stamp = (cached[0] / "model.xml").stat().st_mtime_ns
    again = load_embedder(name, device="openvino")
    assert (cached[0] / "model.xml").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.embed_chips(chips[:2]), ours[:2])


def test_mask_aware_models_refuse_openvino_when_asked_and_fall_back_to_pytorch_by_default():
    with pytest.raises(ModelFileError, match="mask-aware"):
        load_embedder("maskface_v1", device="openvino")
    if not torch.cuda.is_available():
        embedder = load_embedder("maskface_v1")
        assert isinstance(embedder, TorchEmbedder) and embedder.device.type == "cpu"


@pytest.mark.slow
def test_bf16_keeps_real_embeddings_close(arcface_chips):
    """bfloat16 arithmetic (PyTorch autocast) keeps real chips' embeddings within cosine 0.99 of float32's. Four
    chips: on CPUs without bf16 units it is emulated, at 0.3 chips/s."""
    arcface_chips = arcface_chips[:4]
    fp32, bf16 = load_embedder("omz_sface_ensemble", device="cpu"), load_embedder("omz_sface_ensemble",
                                                                                   device="cpu+bf16")
    assert bf16.precision == "bf16" and bf16.fingerprint == fp32.fingerprint + "+bf16"
    cosines = _cosines(fp32.embed_chips(arcface_chips), bf16.embed_chips(arcface_chips))
    assert cosines.min() >= 0.99 and cosines.max() < 1 - 1e-7  # close, yet really computed in bf16


@pytest.mark.slow
def test_openvino_bf16_runs_bf16_where_the_cpu_has_it_and_says_so_where_not(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKFACE_CACHE", str(tmp_path))
    if cpu_has_bf16():
        assert load_embedder("sface", device="openvino+bf16").precision == "bf16"
    else:
        with pytest.warns(UserWarning, match="no bf16 units"):
            embedder = load_embedder("sface", device="openvino+bf16")
        assert embedder.precision == "fp32" and embedder.fingerprint == load_embedder("sface", "openvino").fingerprint
