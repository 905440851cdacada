"""The mask-aware recogniser, its calibrated thresholds, the distillation bank and cross-fitted evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_impostor_thresholds_on_a_hand_made_case():
    from maskface.models.mask_aware import fmr_key, impostor_thresholds

    # four people on a line at 0, 1, 3, 6: impostor distances 1, 2, 3, 3, 5, 6 (the same-person pair is ignored)
    points = np.array([[0.0], [1.0], [3.0], [6.0], [0.0]])
    people = np.array([0, 1, 2, 3, 0])
    thresholds = impostor_thresholds(points, people, (0.5, 0.2))
    distances = np.array([1, 3, 6, 1, 2, 5, 3, 6, 3, 1, 2, 3, 5, 6])  # every pair but (0, 4)
    assert len(distances) == 14
    assert thresholds == {"5e-1": pytest.approx(np.quantile(distances, 0.5)),
                          "2e-1": pytest.approx(np.quantile(distances, 0.2))}
    assert fmr_key(1e-3) == "1e-3" and fmr_key(1e-2) == "1e-2"


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
    recognizer = MaskAwareRecognizer(teacher, student, deoccluder).eval()
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

