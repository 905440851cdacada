"""Face front end on real LFW images: detection rate, byte-exact dlib chips, ArcFace chips, selection policy."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from maskface.errors import NoFaceError
from maskface.face.align import (
    ARCFACE_TEMPLATE,
    arcface_points,
    dlib_chip_matrix,
    invert_affine,
    transform_points,
    warp_chip,
)
from maskface.face.pipeline import FaceConfig, FacePipeline, center_box
from maskface.io.images import load_image
from maskface.io.locations import SHAPE_5, SHAPE_68, dlib_model_path


def test_detection_rate_on_lfw_sample(lfw_sample, pipeline):
    """HOG (with one upsampling retry) finds a face in at least 99 % of a 240-image LFW sample."""
    detectors = []
    for path in lfw_sample:
        try:
            detectors.append(pipeline.align(load_image(path), str(path)).detector)
        except NoFaceError:
            detectors.append("none")
    found = sum(d != "none" for d in detectors)
    assert found / len(lfw_sample) >= 0.99
    assert set(detectors) <= {"hog", "hog+1", "none"}  # every fallback is named (standard front end)


@pytest.mark.parametrize("points,model", [(68, SHAPE_68), (5, SHAPE_5)])
def test_dlib_chip_is_byte_identical_to_dlib(lfw_faces, points, model):
    predictor = dlib.shape_predictor(str(dlib_model_path(model)))
    pipe = FacePipeline(FaceConfig(detector="hog", landmarks=points, select="center"))
    worst = 0
    for _, image, face in lfw_faces[:30]:
        shape = predictor(image, face.detection.to_dlib())
        expected = dlib.get_face_chip(image, shape, 150, 0.25)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], float)
        ours = pipe.align_with_landmarks(image, landmarks, face.detection).chip
        worst = max(worst, int(np.abs(ours.astype(int) - expected.astype(int)).max()))
    assert worst == 0  # the chip is cut by dlib's own extract_image_chip


def test_large_faces_go_through_dlibs_pyramid(lfw_faces):
    """A face four times the chip's size is cut as dlib.get_face_chip cuts it (dlib's pyramid, then bilinear), and a
    single-channel float map and a 4-channel array follow the same geometry as the RGB chip."""
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
    _, image, face = lfw_faces[0]
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    rect = dlib.rectangle(*(4 * v for v in (round(x) for x in face.detection.box)))
    shape = predictor(big, rect)
    matrix = dlib_chip_matrix(np.array([[p.x, p.y] for p in shape.parts()], float))
    chip = warp_chip(big, matrix, 150)
    assert np.array_equal(chip, dlib.get_face_chip(big, shape, 150, 0.25))
    grey = warp_chip(big[..., 1].astype(np.float32), matrix, 150)
    # the uint8 chip rounds at each of its two pyramid levels and truncates at the end; the float map does not
    assert grey.dtype == np.float32 and np.abs(grey - chip[..., 1]).max() < 2.5
    four = warp_chip(np.dstack([big, big[..., :1]]), matrix, 150)
    assert four.shape == (150, 150, 4) and np.array_equal(four[..., :3], chip)


def test_arcface_chip_puts_landmarks_on_the_template(lfw_faces):
    pipe = FacePipeline(FaceConfig(chip="arcface", size=112, select="center"))
    errors = []
    for _, image, face in lfw_faces[:20]:
        aligned = pipe.align_with_landmarks(image, face.landmarks, face.detection)
        assert aligned.chip.shape == (112, 112, 3)
        in_chip = transform_points(arcface_points(face.landmarks), invert_affine(aligned.chip_to_image))
        errors.append(np.linalg.norm(in_chip - ARCFACE_TEMPLATE, axis=1))
    errors = np.array(errors)
    # A similarity fit of 5 points is not exact, and dlib's mouth corners sit wider than the template's; the
    # eyes, which fix the scale, land within a few pixels of the template on a 112-pixel chip.
    assert np.median(errors[:, :2]) < 3.5
    assert np.median(errors) < 4.5


def _double(image: np.ndarray) -> np.ndarray:
    return image.repeat(2, axis=0).repeat(2, axis=1)


def _two_faces(lfw_faces) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """A wide canvas whose largest face is *not* the one nearest its centre: a real LFW photo at twice its size on
    the left, another at its own size in the middle. Returns the canvas and the x spans of the two photos.

    The photos are the first of the sample with one face found at both sizes (some LFW photos show a second person).
    """
    pipe = FacePipeline(FaceConfig())
    single = (image for _, image, _ in lfw_faces if len(pipe.detect(image)) == len(pipe.detect(_double(image))) == 1)
    large, small = _double(next(single)), next(single)  # 500 x 500 and 250 x 250
    canvas = np.full((600, 1300, 3), 128, np.uint8)
    canvas[50:550, 0:500] = large
    canvas[175:425, 525:775] = small  # centred on the canvas centre (650, 300)
    return canvas, (0, 500), (525, 775)


def test_selection_policy_with_two_faces(lfw_faces):
    """'largest' and 'center' must pick different faces here: the large face lies 400 px from the centre."""
    canvas, large_span, small_span = _two_faces(lfw_faces)
    found = FacePipeline(FaceConfig()).detect(canvas)
    assert len(found) == 2
    in_large = [d for d in found if large_span[0] <= d.center[0] <= large_span[1]]
    in_small = [d for d in found if small_span[0] <= d.center[0] <= small_span[1]]
    assert len(in_large) == 1 and len(in_small) == 1
    assert in_large[0].area > 3 * in_small[0].area  # twice the side, about four times the area
    assert abs(in_small[0].center[0] - 650) < 40 < 350 < abs(in_large[0].center[0] - 650)

    largest = FacePipeline(FaceConfig(select="largest")).align(canvas)
    assert largest.faces_found == 2 and largest.detection == in_large[0]
    center = FacePipeline(FaceConfig(select="center")).align(canvas)
    assert center.faces_found == 2 and center.detection == in_small[0]
    assert center.chip.shape == largest.chip.shape == (150, 150, 3)
    assert not np.array_equal(center.chip, largest.chip)
    with pytest.raises(NoFaceError, match="two.png: 2 faces found; expected one"):
        FacePipeline(FaceConfig(select="error")).align(canvas, "two.png")
    assert sorted(f.detection.center[0] for f in FacePipeline(FaceConfig()).align_all(canvas)) == sorted(
        d.center[0] for d in found)


def test_no_face_is_an_error_unless_the_center_fallback_is_asked_for():
    blank = np.full((200, 200, 3), 200, np.uint8)
    with pytest.raises(NoFaceError, match="blank.png: no face found"):
        FacePipeline(FaceConfig()).align(blank, "blank.png")
    face = FacePipeline(FaceConfig(fallback=("upsample", "center"))).align(blank)
    assert face.detector == "center" and face.chip.shape == (150, 150, 3)
    assert center_box((200, 200)).box == pytest.approx((55.0, 55.0, 145.0, 145.0))


def test_aligned_mode_resizes_without_detection():
    crop = np.random.default_rng(0).integers(0, 256, (112, 96, 3), dtype=np.uint8)
    face = FacePipeline(FaceConfig(aligned=True)).align(crop)
    assert face.detector == "aligned" and face.chip.shape == (150, 150, 3)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown fallback"):
        FacePipeline(FaceConfig(fallback=("guess",)))
    with pytest.raises(ValueError, match="arcface chip needs five points or dlib's 68 landmarks"):
        FacePipeline(FaceConfig(detector="hog", chip="arcface", landmarks=5))
    with pytest.raises(ValueError, match="no score threshold"):
        FacePipeline(FaceConfig(detector="mmod", detector_threshold=0.5))
    with pytest.raises(ValueError, match="unknown detector"):
        FacePipeline(FaceConfig(detector="viola-jones"))


def test_mmod_detector_finds_the_same_face_as_hog(lfw_faces):
    _, image, face = lfw_faces[3]
    mmod = FacePipeline(FaceConfig(detector="mmod", select="center", mask_robust=False)).align(image)
    assert mmod.detector == "mmod"
    hog_box, mmod_box = np.array(face.detection.box), np.array(mmod.detection.box)
    assert np.abs(hog_box - mmod_box).max() < 0.35 * (hog_box[2] - hog_box[0])
