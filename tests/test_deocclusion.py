"""De-occlusion: networks, completion metrics on hand-made cases, and the shipped model on real faces."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from maskface.eval.deocclusion import cosine_rows, iou, psnr_inside, ssim_inside
from maskface.models import create_model
from maskface.models.deocclusion import (
    Deoccluder,
    EstimatorConfig,
    Generator,
    GeneratorConfig,
    OcclusionEstimator,
    PatchDiscriminator,
    composite,
    mask_crops,
)


def test_generator_keeps_visible_pixels_and_ignores_hidden_ones():
    torch.manual_seed(0)
    generator = Generator(GeneratorConfig(width=8, dilations=(2,)))
    x = torch.rand(2, 3, 150, 150)
    m = torch.zeros(2, 1, 150, 150)
    m[:, :, 80:140, 30:120] = 1
    out = generator(x, m)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    done = composite(x, out, m)
    assert torch.equal(done[:, :, :80], x[:, :, :80])
    # What lies under the mask never reaches the generator.
    scribbled = x.clone()
    scribbled[:, :, 80:140, 30:120] = torch.rand(2, 3, 60, 90)
    assert torch.equal(generator(scribbled, m), out)


def test_discriminators_and_crops_shapes():
    images = torch.rand(3, 3, 150, 150)
    maps = torch.zeros(3, 1, 150, 150)
    maps[0, :, 70:130, 40:110] = 1  # one masked face, two without a mask (fallback crop)
    crops, crop_maps = mask_crops(images, maps)
    assert crops.shape == (3, 3, 64, 64) and crop_maps[0].mean() > 0.5 and crop_maps[1].sum() == 0
    assert PatchDiscriminator()(images, maps).shape == (3, 1, 9, 9)
    assert PatchDiscriminator(depth=3)(crops, crop_maps).shape == (3, 1, 8, 8)
    assert OcclusionEstimator(EstimatorConfig(width=8))(images).shape == (3, 1, 150, 150)


def test_deoccluder_leaves_faces_it_judges_unmasked_alone():
    estimator = OcclusionEstimator(EstimatorConfig(width=8))
    torch.nn.init.constant_(estimator.head.bias, -10.0)  # predicts "nothing hidden"
    torch.nn.init.zeros_(estimator.head.weight)
    deoccluder = Deoccluder(estimator, Generator(GeneratorConfig(width=8, dilations=(2,)))).eval()
    x = torch.rand(2, 3, 150, 150)
    with torch.no_grad():
        done, maps = deoccluder(x)
    assert maps.sum() == 0 and torch.equal(done, x)


def test_psnr_ssim_iou_on_hand_made_cases():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    region = np.zeros((10, 10), bool)
    region[2:4, 2:4] = True
    b[2:4, 2:4] = 51  # error 0.2 inside the region, none outside
    assert psnr_inside(a, b, region) == pytest.approx(10 * np.log10(1 / 0.04))
    assert psnr_inside(a, a, region) == float("inf")
    face = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    full = np.ones((32, 32), bool)
    assert ssim_inside(face, face, full) == pytest.approx(1.0)
    assert ssim_inside(face, 255 - face, full) < 0
    assert cosine_rows(np.array([[1.0, 0], [3, 4]]), np.array([[2.0, 0], [-4, 3]])).tolist() == [1.0, 0.0]
    p, t = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    p[:2], t[1:3] = True, True  # overlap one row of four, union three rows
    assert iou(p, t) == pytest.approx(1 / 3)
    assert iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_registry_serves_the_deocclusion_model_and_refuses_it_as_embedder():
    from maskface.errors import ModelFileError
    from maskface.models.embedder import load_embedder
    from maskface.models.registry import model_info

    assert model_info("deocclusion_v1").kind == "deocclusion"
    assert isinstance(create_model("deocclusion_v1"), Deoccluder)
    with pytest.raises(ModelFileError, match="not a face embedder"):
        load_embedder("deocclusion_v1")
    with pytest.raises(ModelFileError, match="not a de-occlusion model"):
        load_embedder("dlib_resnet_v1+dlib_resnet_v1")


# --- the shipped model on real faces ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def held_out(lfw_root, lfw_faces):
    """Chips of sampled LFW people of folds 6-10 (never trained on), masked from (seed 0, key)."""
    from maskface.data.lfw import LFW
    from maskface.face.align import invert_affine, transform_points
    from maskface.masks.synth import MaskSynthesizer, mask_key

    people = LFW(lfw_root).people_of_folds([6, 7, 8, 9, 10])
    synthesizer = MaskSynthesizer(seed=0)
    original, masked, maps = [], [], []
    for path, _, face in lfw_faces:
        if path.parent.name not in people:
            continue
        points = transform_points(face.landmarks, invert_affine(face.chip_to_image))
        result = synthesizer(face.chip, points, key=mask_key(path))
        original.append(face.chip)
        masked.append(result.image)
        maps.append(result.occlusion)
    assert len(original) >= 60
    return np.stack(original), np.stack(masked), np.stack(maps)


@pytest.mark.slow
def test_shipped_estimator_and_generator_on_held_out_faces(held_out):
    from maskface.eval.deocclusion import cosine_rows, raw_estimates
    from maskface.models.deocclusion import complete_chips
    from maskface.models.embedder import load_embedder

    original, masked, maps = held_out
    deoccluder = create_model("deocclusion_v1", pretrained=True)
    teacher = load_embedder("dlib_resnet_v1", device="cpu")
    estimates = raw_estimates(deoccluder, masked)
    mean_iou = np.mean([iou(p, t) for p, t in zip(estimates, maps)])
    assert mean_iou >= 0.9, mean_iou
    judged_masked = complete_chips(deoccluder, original)[1].any(axis=(1, 2)).mean()
    assert judged_masked <= 0.1, judged_masked  # unmasked faces are left alone
    completed, _ = complete_chips(deoccluder, masked)
    reference = teacher.embed_chips(original)
    before = cosine_rows(reference, teacher.embed_chips(masked))
    after = cosine_rows(reference, teacher.embed_chips(completed))
    assert after.mean() > before.mean() + 0.01, (before.mean(), after.mean())


@pytest.mark.slow
def test_deocclude_command_on_a_real_masked_photo_and_on_chips(data_root, tmp_path):
    photo = data_root / "rwmfd" / "0001" / "0144.jpg"
    result = subprocess.run([sys.executable, "-m", "maskface", "deocclude", str(photo), "--out", str(tmp_path / "a")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "a" / "deocclusion.csv").read_text().splitlines()
    assert rows[1].endswith(",true") and float(rows[1].split(",")[2]) > 0.1
    for suffix in ("chip", "completed", "occlusion"):
        assert (tmp_path / "a" / f"0144.jpg.{suffix}.png").is_file()
    chip = tmp_path / "a" / "0144.jpg.chip.png"
    again = subprocess.run([sys.executable, "-m", "maskface", "deocclude", str(chip), "--aligned", "--out",
                            str(tmp_path / "b")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "b" / "0144.jpg.chip.png.completed.png").is_file()
    missing = subprocess.run([sys.executable, "-m", "maskface", "deocclude", str(tmp_path / "none.jpg"), "--out",
                              str(tmp_path / "c")], capture_output=True, text=True)
    assert missing.returncode in (2, 3) and "Traceback" not in missing.stderr


def test_embedding_cache_keys_change_with_the_weights():
    from maskface.models.embedder import DeoccludingEmbedder, TorchEmbedder
    from maskface.models.registry import EmbedderSpec

    spec = EmbedderSpec("toy", size=150)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))
    first = TorchEmbedder(net, spec, device="cpu").fingerprint
    assert TorchEmbedder(net, spec, device="cpu").fingerprint == first
    with torch.no_grad():
        net[1].weight[0, 0] += 1e-3
    assert TorchEmbedder(net, spec, device="cpu").fingerprint != first
    base = TorchEmbedder(net, spec, device="cpu")
    a = DeoccludingEmbedder(base, create_model("deocclusion_v1"), "toy+d", device="cpu").fingerprint
    b = DeoccludingEmbedder(base, create_model("deocclusion_v1"), "toy+d", device="cpu").fingerprint
    assert a != b and a.startswith(base.fingerprint)  # two random de-occlusion models
