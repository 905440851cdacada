"""The Python API on real photos: maskface.load's signature, every face of a group photo, batched embeddings, score
matrices against pairwise verify, channel order, and refused arrays. Nothing here depends on which detector is the
default."""

from __future__ import annotations

import inspect
import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

import maskface
from maskface.apps import recognizer as recognizer_module
from maskface.data.lfw import LFW
from maskface.errors import ImageError, MaskfaceError, NoFaceError
from maskface.io.images import load_image
from maskface.models.embedder import compare, same_decisions, score_matrix

#: Three LFW portraits for the group photo, each pasted at its own size (largest first).
GROUP = (("Colin_Powell", 1, 300), ("Serena_Williams", 1, 220), ("Tony_Blair", 1, 160))
#: A real masked photo (real-world masked faces, no labels) that the mask-aware default model completes.
MASKED_PHOTO = "rwmfd/0000/0001.jpg"


@pytest.fixture(scope="module")
def teacher_api():
    return maskface.load("dlib_resnet_v1")


@pytest.fixture(scope="module")
def default_api():
    return maskface.load()


@pytest.fixture(scope="module")
def mask_aware_api():
    return maskface.load("maskface_v1")


def _lfw(root, name: str, number: int = 1):
    return root / name / f"{name}_{number:04d}.jpg"


def _blank() -> np.ndarray:
    return np.full((200, 200, 3), 128, np.uint8)


# -- maskface.load and the package root ---------------------------------------------------------------------------
def test_load_shows_the_recognizers_signature():
    signature = inspect.signature(maskface.load)
    assert signature == inspect.signature(recognizer_module.load)
    assert list(signature.parameters) == ["model", "device", "face", "threshold", "fmr"]
    assert signature.parameters["model"].default == "omz_sface_ensemble"
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in signature.parameters.values())
    assert all(f"``{name}``" in maskface.load.__doc__ for name in signature.parameters)


def test_importing_maskface_is_cheap_and_its_classes_come_lazily():
    code = ("import sys, maskface; print(sorted(m for m in sys.modules if m.startswith(('maskface', 'torch', 'cv2'))));"
            "maskface.Recognizer; print('torch' in sys.modules)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[0] == "['maskface', 'maskface.defaults']" and lines[1] == "True"
    assert maskface.Recognizer is recognizer_module.Recognizer and maskface.Comparison is recognizer_module.Comparison
    assert maskface.Verification is recognizer_module.Verification
    from maskface.face.pipeline import Face, FaceConfig

    assert maskface.Face is Face and maskface.FaceConfig is FaceConfig
    assert {"Recognizer", "Comparison", "Face", "load"} <= set(dir(maskface)) and set(maskface.__all__) <= set(
        dir(maskface))
    with pytest.raises(AttributeError, match="no attribute 'Recogniser'"):
        maskface.Recogniser  # noqa: B018


# -- faces() -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def group_photo(lfw_root):
    """A grey canvas with three LFW portraits side by side at different sizes; returns it and each photo's x span."""
    canvas = np.full((340, 760, 3), 128, np.uint8)
    spans, left = [], 10
    for name, number, side in GROUP:
        portrait = cv2.resize(load_image(_lfw(lfw_root, name, number))[25:225, 25:225], (side, side),
                              interpolation=cv2.INTER_AREA)
        canvas[20 : 20 + side, left : left + side] = portrait
        spans.append((left, left + side))
        left += side + 30
    return canvas, spans


def test_faces_finds_every_face_of_a_group_photo(teacher_api, group_photo, lfw_root):
    canvas, spans = group_photo
    faces = teacher_api.faces(canvas)
    assert len(faces) == 3
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)  # largest first: here, in the order they were pasted
    for face, (start, end), (_, _, side) in zip(faces, spans, GROUP):
        left, top, right, bottom = face.box
        assert start - 5 <= left < right <= end + 5 and 0 <= top < bottom <= 20 + side + 5
        assert 0.3 * side < right - left < 0.8 * side  # a face box, not the whole portrait
        points = face.five_points
        assert points.shape == (5, 2)
        assert np.all((points[:, 0] > left) & (points[:, 0] < right) & (points[:, 1] > top) & (points[:, 1] < bottom))
        assert points[0, 0] > points[1, 0] > points[3, 0] > points[2, 0]  # eye corners from the image's right
        assert points[4, 1] > points[:4, 1].max()  # the nose base below the eyes
        assert 0.0 <= face.mask_probability < 0.5 and face.masked is False
        assert isinstance(face.detector, str) and face.detector
        assert face.chip.shape == (150, 150, 3) and face.chip.dtype == np.uint8
    # each face of the group photo is its own person: nearest to that portrait's embedding, far from the others
    group = teacher_api.embedder.embed_chips(np.stack([f.chip for f in faces]))
    alone = teacher_api.embed([_lfw(lfw_root, name, number) for name, number, _ in GROUP])
    distances = np.linalg.norm(group[:, None] - alone[None], axis=2)
    assert np.all(np.diag(distances) < 0.3) and np.all(distances.argmin(axis=1) == [0, 1, 2])
    assert np.all(distances[~np.eye(3, dtype=bool)] > 0.45)  # measured: 0.045-0.088 own, 0.65-0.93 others
    assert teacher_api.faces(_blank()) == []


def test_faces_carry_mask_probability_on_a_real_masked_photo(teacher_api, data_root):
    faces = teacher_api.faces(data_root / MASKED_PHOTO)
    assert len(faces) >= 1 and faces[0].masked is True and faces[0].mask_probability > 0.9
    assert faces[0].chip.shape == (150, 150, 3)


# -- embed() -------------------------------------------------------------------------------------------------------
def test_embed_of_a_list_equals_single_embeds(teacher_api, lfw_root):
    paths = [_lfw(lfw_root, name) for name in ("Aaron_Eckhart", "George_W_Bush", "Serena_Williams", "Tony_Blair")]
    pixels = load_image(paths[3])
    images = [paths[0], paths[1].read_bytes(), Image.open(paths[2]), pixels]
    single = np.stack([teacher_api.embed(image) for image in images])
    assert single.shape == (4, 128) and single.dtype == np.float32
    batched = teacher_api.embed(images)
    assert batched.shape == (4, 128)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(teacher_api.embed(tuple(images)), single, atol=1e-5)
    np.testing.assert_allclose(teacher_api.embed(np.stack([pixels, pixels])), single[[3, 3]], atol=1e-5)
    assert teacher_api.embed([]).shape == (0, 128)


def test_embed_names_the_failing_image_or_skips_it(teacher_api, lfw_root):
    paths = [_lfw(lfw_root, "Aaron_Eckhart"), _lfw(lfw_root, "Tony_Blair")]
    with pytest.raises(NoFaceError, match=r"^<array>: no face found \(images\[1\]\)$"):
        teacher_api.embed([paths[0], _blank(), paths[1]])
    with pytest.raises(ImageError, match=r"float64 array: say its scale.*\(images\[2\]\)$"):
        teacher_api.embed([paths[0], paths[1], _blank() / 255.0])
    with pytest.raises(NoFaceError, match=r"^<array>: no face found$"):  # one image: no index
        teacher_api.embed(_blank())
    vectors = teacher_api.embed([paths[0], _blank(), paths[1]], on_error="skip")
    assert vectors.shape == (3, 128) and np.isnan(vectors[1]).all() and not np.isnan(vectors[[0, 2]]).any()
    np.testing.assert_allclose(vectors[[0, 2]], teacher_api.embed(paths), atol=1e-5)
    assert np.isnan(teacher_api.embed([_blank()], on_error="skip")).all()
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        teacher_api.embed(paths, on_error="ignore")


# -- compare() and verify() ----------------------------------------------------------------------------------------
def test_compare_matrices_equal_pairwise_verify(teacher_api, lfw_root):
    a = [_lfw(lfw_root, "George_W_Bush", 1), _lfw(lfw_root, "Colin_Powell", 1)]
    b = [_lfw(lfw_root, "George_W_Bush", 2), _lfw(lfw_root, "Colin_Powell", 2), _lfw(lfw_root, "Tony_Blair", 1)]
    result = teacher_api.compare(a, b)
    assert result.scores.shape == result.thresholds.shape == result.same.shape == (2, 3)
    assert result.metric == "euclidean" and result.completed is None
    for i, image_a in enumerate(a):
        for j, image_b in enumerate(b):
            verification = teacher_api.verify(image_a, image_b)
            assert result.scores[i, j] == pytest.approx(verification.score, abs=1e-5)
            assert result.thresholds[i, j] == verification.threshold == teacher_api.threshold
            assert result.same[i, j] == verification.same
    np.testing.assert_array_equal(result.same, [[True, False, False], [False, True, False]])
    one = teacher_api.compare(a[1], b)  # one against many: a 1 x N matrix, the second row of the full one
    assert one.scores.shape == one.same.shape == (1, 3)
    np.testing.assert_allclose(one.scores, result.scores[1:], atol=1e-5)
    assert teacher_api.compare(a, b[0]).scores.shape == (2, 1)


def test_compare_with_a_fixed_threshold_and_a_skipped_image(teacher_api, lfw_root):
    api = maskface.Recognizer(teacher_api.embedder, threshold=0.4)
    blair = [_lfw(lfw_root, "Tony_Blair", 1), _lfw(lfw_root, "Tony_Blair", 2)]
    result = api.compare([blair[0], _blank()], blair[1], on_error="skip")
    assert result.scores.shape == (2, 1) and np.all(result.thresholds == 0.4)
    assert np.isnan(result.scores[1, 0]) and not result.same[1, 0]
    # the same person, 0.52 apart: the same at the model's 0.6, not at the fixed 0.4
    assert 0.4 < result.scores[0, 0] < teacher_api.threshold and not result.same[0, 0]
    assert teacher_api.verify(*blair).same and not api.verify(*blair).same and api.verify(*blair).threshold == 0.4
    with pytest.raises(NoFaceError, match=r"\(b\[1\]\)$"):
        api.compare(blair[0], [blair[1], _blank()])


def test_score_matrix_on_hand_computed_vectors():
    a = np.array([[3.0, 4.0], [np.nan, np.nan]])
    b = np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 8.0]])
    distances = score_matrix(a, b, "euclidean")
    np.testing.assert_allclose(distances[0], [5.0, 4.0, 5.0])
    assert np.isnan(distances[1]).all()
    np.testing.assert_allclose(score_matrix(a[:1], b[1:], "cosine"), [[0.6, 1.0]])
    np.testing.assert_allclose(score_matrix(a[:1], b[1:], "cosine")[0], compare(a[[0, 0]], b[1:], "cosine"))
    np.testing.assert_array_equal(same_decisions(distances, 4.5, "euclidean"), [[False, True, False]] + [[False] * 3])
    np.testing.assert_array_equal(same_decisions(np.array([0.6, 1.0, np.nan]), 0.8, "cosine"), [False, True, False])
    with pytest.raises(ValueError, match="unknown metric"):
        score_matrix(a, b, "manhattan")


@pytest.mark.slow
def test_compare_holds_each_pair_type_to_its_calibrated_threshold(mask_aware_api, lfw_root, data_root):
    """The mask-aware model: a real masked photo against unmasked LFW photos and itself, each cell as verify gives
    it, U-U, M-U and M-M pairs each held to their own threshold."""
    default_api = mask_aware_api
    masked = data_root / MASKED_PHOTO
    a = [_lfw(lfw_root, "George_W_Bush", 1), masked]
    b = [_lfw(lfw_root, "George_W_Bush", 2), _lfw(lfw_root, "Colin_Powell", 1), masked]
    result = default_api.compare(a, b)
    assert result.scores.shape == result.thresholds.shape == result.same.shape == (2, 3)
    assert result.completed[0].tolist() == [False, True] and result.completed[1].tolist() == [False, False, True]
    module = default_api.embedder.module
    expected_thresholds = [[module.threshold(x, y) for y in (False, False, True)] for x in (False, True)]
    np.testing.assert_allclose(result.thresholds, expected_thresholds)
    assert len(np.unique(result.thresholds)) == 3
    for i, image_a in enumerate(a):
        for j, image_b in enumerate(b):
            verification = default_api.verify(image_a, image_b)
            assert result.scores[i, j] == pytest.approx(verification.score, abs=1e-5)
            assert result.thresholds[i, j] == pytest.approx(verification.threshold)
            assert result.same[i, j] == verification.same
    assert result.scores[1, 2] == pytest.approx(0.0, abs=1e-5) and result.same[1, 2]


@pytest.mark.slow
def test_plain_default_holds_pairs_to_the_shipped_threshold_of_the_front_ends_mask_call(default_api, lfw_root,
                                                                                       data_root):
    """The default model has no completion step: a pair's type comes from the front end's mask call, and its
    threshold from the shipped table (weights/pair_thresholds.json), in verify and compare alike."""
    from maskface.defaults import DEFAULT_MODEL
    from maskface.models.pair_thresholds import shipped_pair_thresholds

    table = shipped_pair_thresholds(DEFAULT_MODEL)
    assert table is not None and default_api.pair_thresholds == table
    assert len(set(table.values())) == 3
    masked = data_root / MASKED_PHOTO
    a = [_lfw(lfw_root, "George_W_Bush", 1), masked]
    b = [_lfw(lfw_root, "George_W_Bush", 2), masked]
    result = default_api.compare(a, b)
    assert result.completed is None
    np.testing.assert_allclose(result.thresholds, [[table["U-U"], table["M-U"]], [table["M-U"], table["M-M"]]])
    verification = default_api.verify(a[0], b[1])
    assert verification.pair_type == "M-U" and verification.faces[1].masked and not verification.faces[0].masked
    assert verification.threshold == pytest.approx(table["M-U"])
    assert verification.to_dict()["pair_type"] == "M-U"
    # a threshold given by the caller still wins
    assert maskface.Recognizer(default_api.embedder, threshold=0.5).verify(a[0], b[1]).threshold == 0.5


@pytest.mark.slow
def test_same_person_scores_below_different_people_on_lfw_pairs(teacher_api, lfw_root):
    """The first 20 matched and 20 mismatched pairs of LFW View 2 fold 1, scored in one 40 x 40 comparison."""
    pairs = LFW(lfw_root).view2_pairs()
    chosen = pairs[:20] + pairs[300:320]
    assert [p.same for p in chosen] == [True] * 20 + [False] * 20
    result = teacher_api.compare([p.a for p in chosen], [p.b for p in chosen])
    scores, same = np.diag(result.scores), np.diag(result.same)
    matched, mismatched = scores[:20], scores[20:]
    assert matched.max() < mismatched.min()  # every matched pair closer than every mismatched one
    assert np.array_equal(same, [True] * 20 + [False] * 20)
    assert np.median(mismatched) - np.median(matched) > 0.3


# -- channel order and refused arrays ------------------------------------------------------------------------------
def test_bgr_and_float_arrays_give_the_rgb_embedding(teacher_api, lfw_root):
    path = _lfw(lfw_root, "Aaron_Eckhart")
    rgb = load_image(path)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    expected = teacher_api.embed(rgb)
    np.testing.assert_array_equal(teacher_api.embed(bgr, bgr=True), expected)
    bgra = np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(teacher_api.embed(bgra, bgr=True), expected)
    np.testing.assert_array_equal(teacher_api.embed(rgb / 255.0, float_range=(0, 1)), expected)
    assert np.linalg.norm(teacher_api.embed(bgr) - expected) > 0.02  # read as RGB, BGR is another picture
    assert np.linalg.norm(teacher_api.embed(cv2.imread(str(path)), bgr=True) - expected) < 0.01  # as OpenCV reads it
    np.testing.assert_allclose(teacher_api.embed([bgr, bgr], bgr=True), [expected, expected], atol=1e-5)
    assert teacher_api.verify(bgr, rgb[:, :, ::-1], bgr=True).score == pytest.approx(0.0, abs=1e-6)
    assert teacher_api.compare(bgr, [bgr], bgr=True).scores[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert teacher_api.faces(bgr, bgr=True)[0].box == teacher_api.face(rgb).box


@pytest.mark.parametrize(("array", "reason"), [
    (np.zeros((64, 64, 3), np.float32), "float32 array: say its scale"),
    (np.zeros((64, 64, 3), np.uint16), "uint16 array: give uint8"),
    (np.zeros((3, 64, 64), np.uint8), "channels-first array"),
    (np.zeros((64, 64, 5), np.uint8), "5 channels"),
    (np.zeros((64, 64, 3), bool), "bool array"),
    (np.zeros((64,), np.uint8), "is not an image"),
])
def test_bad_arrays_raise_maskface_error(teacher_api, array, reason):
    calls = [teacher_api.face, teacher_api.faces, teacher_api.embed, lambda x: teacher_api.embed([x]),
             lambda x: teacher_api.verify(x, x), lambda x: teacher_api.compare(x, [x])]
    for call in calls:
        with pytest.raises(ImageError, match=reason) as info:
            call(array)
        assert isinstance(info.value, MaskfaceError) and "\n" not in str(info.value)


def test_bad_bytes_name_the_input(teacher_api):
    with pytest.raises(ImageError, match=r"^<bytes>: .*\(images\[0\]\)$"):
        teacher_api.embed([io.BytesIO(b"not an image").getvalue()])
