"""The mask-robust front end: shipped models load, the cascade finds masked faces HOG misses, the masked-face
landmark model beats the standard one under masks, and the mask classifier tells masked from unmasked."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.errors import NoFaceError
from maskface.eval.frontend import nme, synthetic_lfw
from maskface.face.detect import Detection
from maskface.face.pipeline import FaceConfig, FacePipeline, covers_center, merge_detections
from maskface.face.robust import gradient_histograms, mask_features, shipped_mask_classifier
from maskface.masks.synth import MaskSynthesizer


def test_gradient_histograms_put_a_vertical_edge_in_the_horizontal_gradient_bin():
    grey = np.zeros((16, 16), np.float32)
    grey[:, 8:] = 100.0  # intensity changes along x: gradient angle 0 degrees
    hist = gradient_histograms(grey, cell=8, bins=9).reshape(4, 9)
    assert hist[:, 0].max() == pytest.approx(1.0, abs=1e-3)  # all the energy in bin 0, normalised
    assert np.allclose(hist[:, 1:], 0)
    assert mask_features(np.zeros((150, 150, 3), np.uint8)).shape == (4 * 8 * 9 + 9,)


def test_nme_is_mean_point_error_over_eye_distance():
    truth = np.array([[100, 50], [80, 50], [-10, 50], [10, 50], [45, 90]], float)  # eye centres 90 px apart
    shifted = truth + [9, 0]
    assert nme(shifted, truth) == pytest.approx(0.1)


def test_merge_keeps_each_detectors_boxes_above_its_threshold_where_no_standard_box_covers_them():
    hog = Detection((0, 0, 100, 100), 0.2, "hog+1")
    hog_weak = Detection((600, 0, 700, 100), -0.2, "hog+1")  # below HOG's threshold
    masked_same_face = Detection((10, 10, 110, 110), 0.5, "masked-hog+1")  # centre inside the HOG box: dropped
    masked_new_face = Detection((300, 0, 400, 100), -0.4, "masked-hog+1")
    found = [masked_new_face, masked_same_face, hog_weak, hog]
    assert merge_detections(found, (0.0, -0.5)) == [hog, masked_new_face]
    assert merge_detections(found, (0.0, -0.3)) == [hog]
    assert merge_detections(found, (-0.3, -0.5)) == [hog_weak, hog, masked_new_face]


def test_covers_center_asks_whether_a_box_contains_the_photos_centre():
    shape = (200, 300, 3)  # centre (150, 100)
    assert covers_center([Detection((100, 50, 150, 100), 1.0, "hog")], shape)  # on the corner counts
    assert not covers_center([Detection((0, 0, 149, 200), 1.0, "hog"), Detection((151, 0, 300, 99), 1.0, "hog")],
                             shape)
    assert not covers_center([], shape)


def test_masked_scan_center_keeps_a_found_subject_and_always_finds_the_masked_face_beside_it(lfw_faces):
    """A masked face that HOG misses, left of an unmasked subject at the photo's centre: the default cascade stops
    at the subject (no masked-face scan), ``masked_scan="always"`` finds both; alone, the masked face is found."""
    hog_only = FacePipeline(FaceConfig(detector="hog", mask_robust=False))
    center = FacePipeline(FaceConfig(detector="hog"))
    always = FacePipeline(FaceConfig(detector="hog", masked_scan="always"))
    _, subject, _ = lfw_faces[0]
    for path, image, face in lfw_faces[1:]:
        masked = MaskSynthesizer(seed=9)(image, face.landmarks, key=str(path)).image
        if not hog_only.detect(masked) and center.detect(masked):
            break
    else:
        pytest.fail("no masked photo that only the masked-face detector finds")
    assert [d.detector for d in center.detect(masked)] == ["masked-hog"]
    scene = np.hstack([masked, subject, np.full_like(subject, 127)])  # the subject holds the centre

    def masked_on_the_left(pipeline: FacePipeline) -> bool:
        return any(d.detector == "masked-hog" and d.center[0] < 250 for d in pipeline.detect(scene))

    assert not masked_on_the_left(center) and masked_on_the_left(always)
    assert any(d.detector == "hog" and 250 <= d.center[0] < 500 for d in center.detect(scene))


def test_unknown_masked_scan_is_refused():
    with pytest.raises(ValueError, match="masked_scan"):
        FacePipeline(FaceConfig(masked_scan="sometimes"))


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_cascade_reports_mask_probability_on_clean_and_masked_faces(lfw_faces, detector):
    pipeline = FacePipeline(FaceConfig(detector=detector, select="center"))
    clean_masked, masked_masked = [], []
    for path, image, face in lfw_faces[:40]:
        clean_masked.append(pipeline.align(image).masked)
        masked = MaskSynthesizer(seed=9)(image, face.landmarks, key=str(path)).image
        try:
            masked_masked.append(pipeline.align(masked).masked)
        except NoFaceError:  # a missed masked face counts as not called masked
            masked_masked.append(False)
    assert np.mean(clean_masked) <= 0.1  # unmasked faces are rarely called masked
    assert np.mean(masked_masked) >= 0.9


@pytest.mark.parametrize("detector", ["yunet", "hog"])
def test_mask_probability_does_not_depend_on_the_output_chip(lfw_faces, detector):
    """The classifier always reads the 150-pixel dlib chip of the face's standard points (YuNet's, or dlib's
    model's): the output chip itself with the default geometry, a chip of its own with any other (here ArcFace's
    112 pixels), and the same numbers either way."""
    dlib_chips = FacePipeline(FaceConfig(detector=detector, select="center"))
    arcface_chips = FacePipeline(FaceConfig(detector=detector, select="center", chip="arcface", size=112))
    for path, image, face in lfw_faces[:6]:
        masked = MaskSynthesizer(seed=9)(image, face.landmarks, key=str(path)).image
        for picture in (image, masked):
            a, b = dlib_chips.align(picture), arcface_chips.align(picture)
            assert a.chip.shape == (150, 150, 3) and b.chip.shape == (112, 112, 3)
            assert a.mask_probability == b.mask_probability


@pytest.mark.slow
def test_held_out_synthetic_masked_lfw(lfw_root):
    """People of View 2 folds 9-10 (never trained on), 119 labelled masked photos. Measured: HOG 50.4 %, v5's
    cascade 100 % (99.50 % on 598 photos, docs/models.md), the default front end (YuNet) 99.16 % (118: a dark face
    under a veil and the mask is missed); the floor is the front end's 99 % target."""
    result = synthetic_lfw(lfw_root.parent, [9, 10], 120, seed=1, workers=2)
    assert result["detection_rate_frontend"] >= 0.99
    assert set(result["frontend_detectors"]) <= {"yunet", "yunet+1", "none"}
    assert result["detection_rate_cascade"] >= 0.99
    assert result["detection_rate_cascade"] > result["detection_rate_hog"] + 0.4
    assert result["nme_masked_5pt"] <= 0.06
    assert result["nme_masked_5pt"] < result["nme_standard_5pt"]
    assert result["mask_classifier_accuracy"] >= 0.95
    assert shipped_mask_classifier().threshold == 0.5
