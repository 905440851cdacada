"""The mask-aware recogniser, its calibrated thresholds, the distillation bank and cross-fitted evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_impostor_thresholds_per_pair_type_on_a_hand_made_case():
    from maskface.models.mask_aware import impostor_thresholds

    # people 0-3 on a line at 0, 1, 3, 6, and person 0 again (masked) at 0.5; faces 3 and 4 were judged masked
    points = np.array([[0.0], [1.0], [3.0], [6.0], [0.5]])
    people = np.array([0, 1, 2, 3, 0])
    masked = np.array([False, False, False, True, True])
    thresholds = impostor_thresholds(points, people, masked, (0.5, 0.2))
    unmasked = np.array([1, 3, 2])  # impostor pairs among faces 0-2
    one_masked = np.array([6, 5, 3, 0.5, 2.5])  # (0,3) (1,3) (2,3) (1,4) (2,4); (0,4) is the same person
    both = np.array([5.5])  # (3, 4)
    for name, distances in (("U-U", unmasked), ("M-U", one_masked), ("M-M", both)):
        assert thresholds[name] == {"5e-1": pytest.approx(np.quantile(distances, 0.5)),
                                    "2e-1": pytest.approx(np.quantile(distances, 0.2))}, name


def test_shipped_thresholds_are_calibrated_per_pair_type():
    from maskface.models.embedder import load_embedder

    recognizer = load_embedder("maskface_v1")
    module = recognizer.module
    for name in ("U-U", "M-U", "M-M"):
        t = module.thresholds[name]
        assert t["1e-4"] < t["1e-3"] < t["1e-2"], name
    # completed masked faces sit closer together: a stricter threshold for the same FMR
    assert module.threshold(True, True) < module.threshold(True, False) < module.threshold(False, False)
    assert recognizer.spec.threshold == module.threshold(False, False)
    assert abs(module.threshold(False, False) - 0.6) < 0.05  # FMR 1e-2 on clean faces: about dlib's own 0.6


@pytest.fixture(scope="module")
def recognizer_parts():
    from maskface.models import create_model

    teacher = create_model("dlib_resnet_v1", pretrained=True)
    return teacher, create_model("deocclusion_v1", pretrained=True)


def test_unmasked_chips_go_to_the_teacher_and_masked_ones_are_completed(lfw_faces, recognizer_parts):
    from maskface.face.align import invert_affine, transform_points
    from maskface.masks.synth import MaskSynthesizer, mask_key
    from maskface.models.deocclusion import chips_to_tensor
    from maskface.models.dlib_resnet import DlibResNet
    from maskface.models.mask_aware import MaskAwareRecognizer

    teacher, deoccluder = recognizer_parts
    student = DlibResNet().eval()  # untrained: anything it embeds is far from the teacher's embeddings
    recognizer = MaskAwareRecognizer(teacher, student, deoccluder, masked_embedding="student").eval()
    clean = np.stack([face.chip for _, _, face in lfw_faces[:4]])
    synthesizer = MaskSynthesizer(seed=0)
    masked = np.stack([synthesizer(face.chip, transform_points(face.landmarks, invert_affine(face.chip_to_image)),
                                   key=mask_key(path)).image for path, _, face in lfw_faces[:4]])
    x = chips_to_tensor(np.concatenate([clean, masked])) * 255
    with torch.no_grad():
        embeddings, was_masked = recognizer.embed_with_masks(x)
        completed = deoccluder(x / 255)[0]
        assert was_masked.tolist() == [False] * 4 + [True] * 4
        assert torch.equal(embeddings[:4], teacher(x[:4]))
        assert torch.allclose(embeddings[4:], student(completed[4:] * 255), atol=1e-5)
        # the default ensemble: the mean of student and teacher on the completed chip; unmasked chips unchanged
        recognizer.masked_embedding = "ensemble"
        ensemble, _ = recognizer.embed_with_masks(x)
        assert torch.equal(ensemble[:4], embeddings[:4])
        expected = (student(completed[4:] * 255) + teacher(completed[4:] * 255)) / 2
        assert torch.allclose(ensemble[4:], expected, atol=1e-5)
    with pytest.raises(ValueError, match="masked_embedding"):
        MaskAwareRecognizer(teacher, student, deoccluder, masked_embedding="teacher")

