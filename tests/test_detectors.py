"""YuNet and RetinaFace on real photos: faces found, five points where dlib's 68 landmarks put the eyes, in the right
order; chips of every geometry from five points; RetinaFace's priors, decoding and NMS on hand-made cases."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest
import torch

from maskface.face.align import (
    FIVE_POINTS,
    arcface_points,
    dlib_chip_matrix,
    five_point_chip_matrix,
    five_point_template,
    invert_affine,
    shape_from_five,
    transform_points,
    warp_chip,
)
from maskface.face.detect import create_detector
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.face.retinaface import (
    RetinaFaceNet,
    decode,
    non_maximum_suppression,
    prior_boxes,
    shipped_retinaface,
)
from maskface.face.yunet import MIN_SIDE
from maskface.io.images import iter_image_files, load_image


@pytest.fixture(scope="module")
def yunet():
    return create_detector("yunet")


@pytest.fixture(scope="module")
def retinaface():
    return create_detector("retinaface")


def _central(found, face):
    """The detection nearest the labelled (HOG) face."""
    centre = np.array(face.detection.center)
    return min(found, key=lambda d: np.linalg.norm(np.array(d.center) - centre))


def _eye_errors(detector, faces) -> np.ndarray:
    """Per face, the distance (pixels) of each detected eye from the centre of dlib's six 68-landmark eye points."""
    errors = []
    for _, image, face in faces:
        found = detector(image)
        assert found, "no face found on an LFW photo"
        points = _central(found, face).points
        errors.append(np.linalg.norm(points[:2] - arcface_points(face.landmarks)[:2], axis=1))
    return np.array(errors)


def test_yunet_eyes_land_on_dlibs_eye_centres(yunet, lfw_faces):
    """40 LFW photos (250 px, eyes about 45 px apart): measured median 3.4 px, 90th percentile 6.4 px."""
    errors = _eye_errors(yunet, lfw_faces[:40])
    assert np.median(errors) < 4.5 and np.percentile(errors, 90) < 8.0


def test_retinaface_eyes_land_on_dlibs_eye_centres(retinaface, lfw_faces):
    """20 LFW photos: measured median 2.8 px, 90th percentile 4.7 px."""
    errors = _eye_errors(retinaface, lfw_faces[:20])
    assert np.median(errors) < 3.5 and np.percentile(errors, 90) < 6.0


@pytest.mark.parametrize("name", ["yunet", "retinaface"])
def test_points_come_in_maskfaces_order(name, yunet, retinaface, lfw_faces):
    """Image-left eye, image-right eye, nose tip, image-left then image-right mouth corner (FIVE_POINTS), on frontal
    faces, and the mirror image swaps left and right, as image order must."""
    detector = {"yunet": yunet, "retinaface": retinaface}[name]
    assert FIVE_POINTS[0] == "left eye" and FIVE_POINTS[3] == "left mouth corner"
    for _, image, face in lfw_faces[:10]:
        points = _central(detector(image), face).points
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = points
        assert lx < nx < rx and mlx < mrx
        assert max(ly, ry) < ny < min(mly, mry)
        mirrored = _central(detector(np.ascontiguousarray(image[:, ::-1])), face).points
        mirrored[:, 0] = image.shape[1] - mirrored[:, 0]
        assert np.linalg.norm(mirrored[[1, 0, 2, 4, 3]] - points, axis=1).max() < 0.25 * (rx - lx)


def test_yunet_finds_every_face_of_an_lfw_sample(yunet, lfw_sample):
    """All 240 photos of the LFW sample have a face at the default threshold, in the first pass."""
    assert all(yunet(load_image(path)) for path in lfw_sample)


def _scene(faces):
    """Three real faces side by side on a grey canvas, at 1x, 1.5x and 0.7x."""
    tiles = [cv2.resize(faces[i][1], None, fx=f, fy=f) for i, f in zip(range(3), (1.0, 1.5, 0.7))]
    canvas = np.full((400, sum(t.shape[1] for t in tiles) + 40, 3), 128, np.uint8)
    x = 0
    for tile in tiles:
        canvas[: tile.shape[0], x : x + tile.shape[1]] = tile
        x += tile.shape[1] + 20
    return canvas


@pytest.mark.parametrize("name", ["yunet", "retinaface"])
def test_a_photo_with_several_faces_gives_several(name, yunet, retinaface, lfw_faces):
    detector = {"yunet": yunet, "retinaface": retinaface}[name]
    found = detector(_scene(lfw_faces))
    assert len(found) >= 3
    pipeline = FacePipeline(FaceConfig(detector=name, mask_robust=False))
    assert len(pipeline.align_all(_scene(lfw_faces))) >= 3


def test_yunet_boxes_and_points_map_back_from_resized_searches(yunet, lfw_faces):
    """A large photo is searched shrunk, a tiny one enlarged to MIN_SIDE; both map boxes and points back."""
    _, image, face = lfw_faces[5]
    reference = _central(yunet(image), face)
    eye_distance = np.linalg.norm(reference.points[0] - reference.points[1])
    big = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_LINEAR)  # 2000 px: searched at 1600
    big_face = max(yunet(big), key=lambda d: d.area)
    assert np.abs(big_face.points / 8 - reference.points).max() < 0.1 * eye_distance
    tiny = cv2.resize(image, (80, 80), interpolation=cv2.INTER_AREA)
    assert min(tiny.shape[:2]) < MIN_SIDE
    tiny_face = max(yunet(tiny), key=lambda d: d.area)
    assert np.abs(tiny_face.points * 250 / 80 - reference.points).max() < 0.2 * eye_distance


def test_yunet_finds_tight_crops(yunet, lfw_faces):
    """Faces that fill a 160-pixel crop (the HOG box, forehead and chin cut), as in real masked-pair sets."""
    for _, image, face in lfw_faces[:20]:
        left, top, right, bottom = face.detection.box
        crop = cv2.resize(image[int(top) : int(bottom), int(left) : int(right)], (160, 160))
        assert yunet(crop)


def test_five_points_round_trip_through_the_68_point_shape():
    points = np.array([[100, 120], [150, 118], [126, 150], [105, 175], [148, 173.0]])
    shape = shape_from_five(points)
    assert shape.shape == (68, 2)
    assert np.abs(arcface_points(shape) - points).max() < 1e-9
    assert shape[8, 1] > points[3:, 1].max()  # the chin is below the mouth


@pytest.mark.parametrize("chip,size", [("dlib", 150), ("arcface", 112), ("omz", 128), ("omz", 256)])
def test_chips_of_every_geometry_put_the_points_on_the_template(chip, size, yunet, lfw_faces):
    """The five points land on the template: the fit is a similarity, so not exactly; measured median residual
    1.4 % (dlib), 2.2 % (ArcFace) and 1.7 % (OMZ) of the chip side."""
    template = five_point_template(chip, size)
    residuals = []
    for _, image, face in lfw_faces[:15]:
        points = _central(yunet(image), face).points
        matrix = five_point_chip_matrix(points, chip, size)
        assert warp_chip(image, matrix, size).shape == (size, size, 3)
        residuals.append(np.linalg.norm(transform_points(points, invert_affine(matrix)) - template, axis=1))
    assert np.median(residuals) < 0.03 * size


def test_templates_scale_with_size_and_follow_dlibs_padding():
    assert np.allclose(five_point_template("omz", 128)[0], [0.31556875 * 128, 0.46157411 * 128])
    assert np.allclose(five_point_template("arcface", 224), 2 * five_point_template("arcface", 112))
    # dlib's padding maps a mean-face point x (0..1) to (padding + x) / (1 + 2 padding) of the chip side
    at_quarter, at_half = five_point_template("dlib", 150, 0.25), five_point_template("dlib", 150, 0.5)
    mean_face = at_quarter / 150 * 1.5 - 0.25
    assert np.allclose(at_half, (0.5 + mean_face) / 2.0 * 150)
    with pytest.raises(ValueError, match="unknown chip geometry"):
        five_point_template("vgg", 224)


def test_dlib_chip_from_five_points_is_close_to_dlibs_own(yunet, lfw_faces):
    """YuNet's points with DLIB_TEMPLATE against dlib.get_face_chip from 68 landmarks, 30 LFW photos: measured mean
    absolute difference 16.4 of 255 at padding 0.25 and 17.3 at 0.5, faces 1.5-1.7 % larger (on 499 photos 17.6,
    chip corners 8.7 px apart; dlib's own 5-point model 11.0 and 4.8: docs/results/dlib5-template.md)."""
    for padding in (0.25, 0.5):
        diffs, scales = [], []
        for _, image, face in lfw_faces[:30]:
            shape = dlib.full_object_detection(face.detection.to_dlib(), [dlib.point(round(x), round(y))
                                                                          for x, y in face.landmarks])
            expected = dlib.get_face_chip(image, shape, 150, padding)
            matrix = five_point_chip_matrix(_central(yunet(image), face).points, "dlib", 150, padding)
            diffs.append(np.abs(warp_chip(image, matrix, 150).astype(float) - expected).mean())
            reference = dlib_chip_matrix(face.landmarks, 150, padding)
            scales.append(np.linalg.det(matrix[:, :2]) ** 0.5 / np.linalg.det(reference[:, :2]) ** 0.5)
        assert np.mean(diffs) < 21.0
        assert abs(np.median(scales) - 1) < 0.03  # the same face size in the chip


def test_default_pipeline_is_yunet_with_five_point_chips(lfw_faces):
    """The default front end: YuNet, its points kept (``arcface_points`` of the face's 68-point shape gives them
    back), the mask classifier's probability, and every geometry's chip from the same five points."""
    path, image, _ = lfw_faces[2]
    face = FacePipeline(FaceConfig()).align(image, str(path))
    assert face.detector == "yunet" and face.landmarks.shape == (68, 2)
    assert np.abs(arcface_points(face.landmarks) - face.detection.points).max() < 1e-9
    assert face.mask_probability is not None and not face.masked
    assert np.allclose(face.chip_to_image, five_point_chip_matrix(face.detection.points, "dlib", 150))
    omz = FacePipeline(FaceConfig(chip="omz", size=128)).align(image)
    assert omz.chip.shape == (128, 128, 3)
    assert np.allclose(omz.chip_to_image, five_point_chip_matrix(face.detection.points, "omz", 128))
    # Oracle alignment with the face's landmarks reproduces the chip.
    again = FacePipeline(FaceConfig()).align_with_landmarks(image, face.landmarks, face.detection)
    assert np.array_equal(again.chip, face.chip)


def test_retinaface_priors_match_its_heads():
    """Per level ceil(side / step)^2 cells with two anchors each, in the heads' order; the network's outputs have
    one row per prior."""
    priors = prior_boxes(250, 250)
    assert priors.shape == (2 * (32 * 32 + 16 * 16 + 8 * 8), 4)
    assert torch.allclose(priors[0], torch.tensor([4 / 250, 4 / 250, 10 / 250, 10 / 250]))
    assert torch.allclose(priors[1], torch.tensor([4 / 250, 4 / 250, 20 / 250, 20 / 250]))
    assert torch.allclose(priors[2, :2], torch.tensor([12 / 250, 4 / 250]))  # next cell along the row
    with torch.inference_mode():
        boxes, scores, points = RetinaFaceNet().eval()(torch.zeros(1, 3, 250, 250))
    assert boxes.shape == (1, len(priors), 4) and scores.shape == (1, len(priors)) and points.shape[-1] == 10


def test_retinaface_decoding_and_nms_on_hand_made_cases():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    offsets = torch.tensor([[1.0, 0.0, 0.0, float(np.log(2)) / 0.2]])  # centre right by 0.1 * 0.2, height doubled
    landmark_offsets = torch.zeros(1, 10)
    landmark_offsets[0, 0] = -5.0  # first point left by 5 * 0.1 * 0.2
    boxes, points = decode(offsets, landmark_offsets, priors)
    assert torch.allclose(boxes, torch.tensor([[0.42, 0.3, 0.62, 0.7]]), atol=1e-6)
    assert torch.allclose(points[0, 0], torch.tensor([0.4, 0.5])) and torch.allclose(points[0, 1], priors[0, :2])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 4]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    # box 0 overlaps box 1 by 90/110 = 0.82 IoU; box 3 overlaps box 1 by 36/104 = 0.35 (kept at 0.4, not at 0.3)
    assert non_maximum_suppression(boxes, scores, 0.4) == [1, 3, 2]
    assert non_maximum_suppression(boxes, scores, 0.3) == [1, 2]


def test_retinaface_loads_strictly_and_runs_on_the_chosen_device(lfw_faces):
    net = shipped_retinaface("cpu")
    assert next(net.parameters()).device.type == "cpu" and not net.training
    detector = create_detector("retinaface", threshold=0.9)
    assert detector.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert all(d.score >= 0.9 for d in detector(lfw_faces[0][1]))


@pytest.mark.slow
def test_yunet_on_real_masked_photos(data_root):
    """The 1,194 real masked photos of ``rwmfd`` (about 256 px, no labels): the default front end finds a face in
    1,147 (measured; front end v5's HOG cascade: 795)."""
    photos = [path for path, _ in iter_image_files([data_root / "rwmfd"])]
    pipeline = FacePipeline(FaceConfig(mask_robust=False))
    assert len(photos) == 1194
    found = sum(bool(pipeline.detect(load_image(p))) for p in photos)
    assert found >= 1120
