"""Synthetic masks on real LFW faces: where they sit, determinism, variety, and the 5-point and chip paths."""

from __future__ import annotations

import os
import subprocess
import sys

import dlib
import numpy as np
import pytest

from maskface.face.align import invert_affine, transform_points
from maskface.face.geometry import chip_landmarks, landmarks_from_5
from maskface.io.locations import SHAPE_5, dlib_model_path
from maskface.masks.render import MASK_TYPES, MaskConfig, sample_style
from maskface.masks.synth import MaskSynthesizer, mask_rng

MOUTH_AND_NOSE_TIP = [*range(48, 68), 33]
EYES = list(range(36, 48))


def _inside(occlusion: np.ndarray, points: np.ndarray) -> np.ndarray:
    h, w = occlusion.shape
    xy = np.round(points).astype(int)
    xy[:, 0] = np.clip(xy[:, 0], 0, w - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, h - 1)
    return occlusion[xy[:, 1], xy[:, 0]]


def _coverage(cases) -> tuple[float, float]:
    """(fraction of mouth + nose-tip points covered, fraction of eye points left visible)."""
    covered, visible = [], []
    for occlusion, landmarks in cases:
        covered.append(_inside(occlusion, landmarks[MOUTH_AND_NOSE_TIP]))
        visible.append(~_inside(occlusion, landmarks[EYES]))
    return float(np.mean(covered)), float(np.mean(visible))


def test_geometry_on_real_faces_every_type(lfw_faces):
    assert len(lfw_faces) >= 200
    for mask_type in MASK_TYPES:
        synth = MaskSynthesizer(seed=1, mask_type=mask_type)
        cases = [(synth(image, face.landmarks, key=str(path)).occlusion, face.landmarks)
                 for path, image, face in lfw_faces]
        covered, visible = _coverage(cases)
        assert covered >= 0.97, mask_type
        assert visible >= 0.99, mask_type


def test_five_point_path_places_masks_too(lfw_faces):
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
    synth = MaskSynthesizer(seed=2)
    cases = []
    for path, image, face in lfw_faces[:100]:
        shape = predictor(image, face.detection.to_dlib())
        five = np.array([[p.x, p.y] for p in shape.parts()], float)
        assert landmarks_from_5(five).shape == (68, 2)
        cases.append((synth(image, five, key=str(path)).occlusion, face.landmarks))  # judged by the 68 points
    covered, visible = _coverage(cases)
    assert covered >= 0.95 and visible >= 0.99


def test_aligned_chip_path_uses_the_canonical_shape(lfw_faces):
    synth = MaskSynthesizer(seed=3)
    cases = []
    for path, _, face in lfw_faces[:100]:
        in_chip = transform_points(face.landmarks, invert_affine(face.chip_to_image))
        cases.append((synth(face.chip, None, key=str(path)).occlusion, in_chip))
    covered, visible = _coverage(cases)
    assert covered >= 0.95 and visible >= 0.99
    assert chip_landmarks(150).shape == (68, 2)


def test_the_occlusion_map_holds_every_changed_pixel(lfw_faces):
    path, image, face = lfw_faces[0]
    for mask_type in MASK_TYPES:
        result = MaskSynthesizer(seed=4, mask_type=mask_type)(image, face.landmarks, key=str(path))
        changed = np.any(result.image != image, axis=2)
        assert not (changed & ~result.occlusion).any(), mask_type
        assert changed[result.occlusion].mean() > 0.95  # and the mask really covers what the map says
        assert result.occlusion.mean() > 0.05


def test_same_seed_and_key_give_the_same_bytes_in_another_process(lfw_faces):
    _path, image, face = lfw_faces[5]
    first = MaskSynthesizer(seed=11)(image, face.landmarks, key="person/img_0001.jpg")
    again = MaskSynthesizer(seed=11)(image, face.landmarks, key="person/img_0001.jpg")
    assert first.image.tobytes() == again.image.tobytes()
    other_key = MaskSynthesizer(seed=11)(image, face.landmarks, key="person/img_0002.jpg")
    assert other_key.image.tobytes() != first.image.tobytes()
    code = "from maskface.masks.synth import mask_rng; print(mask_rng(11, 'person/img_0001.jpg').random())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert float(child.stdout) == mask_rng(11, "person/img_0001.jpg").random()


def test_types_differ_measurably(lfw_faces):
    path, image, face = lfw_faces[2]
    results = {t: MaskSynthesizer(seed=5, mask_type=t)(image, face.landmarks, key=str(path)) for t in MASK_TYPES}
    for a in MASK_TYPES:
        for b in MASK_TYPES:
            if a < b:
                union = results[a].occlusion | results[b].occlusion
                colour_gap = np.abs(results[a].image.astype(int) - results[b].image.astype(int))[union].mean()
                iou = (results[a].occlusion & results[b].occlusion).sum() / union.sum()
                assert colour_gap > 8 or iou < 0.9, (a, b)


def test_styles_follow_the_config():
    rng = np.random.default_rng(0)
    config = MaskConfig(types=("n95", "gas"))
    kinds = {sample_style(rng, config).type for _ in range(50)}
    assert kinds == {"n95", "gas"}
    with pytest.raises(ValueError, match="unknown mask type"):
        MaskConfig(types=("scarf",))
    with pytest.raises(ValueError, match="68 landmarks"):
        MaskSynthesizer()(np.zeros((100, 100, 3), np.uint8), np.zeros((7, 2)))


def test_mask_keys_from_undecodable_file_names_are_hashed_by_their_bytes():
    """``maskface mask`` keys masks by relative path; a name with bytes that are not UTF-8 must work (issue 25)."""
    key = os.fsdecode(b"person/\xff\xfe-undecodable.jpg")  # lone surrogates, as os.fsdecode keeps the bytes
    assert mask_rng(3, key).random() == mask_rng(3, key).random()
    assert mask_rng(3, key).random() != mask_rng(3, os.fsdecode(b"person/\xfe\xff-undecodable.jpg")).random()
