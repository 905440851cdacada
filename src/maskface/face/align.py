"""Face alignment: warp a face to a canonical chip from its landmarks.

Three chip geometries:

* ``dlib``: dlib's ``get_face_chip`` (default 150x150, padding 0.25), the input of dlib's recogniser. From dlib's
  landmarks the geometry comes from ``dlib.get_face_chip_details``; from five points (YuNet, RetinaFace) a
  least-squares similarity to :data:`DLIB_TEMPLATE`, a template made to reproduce dlib's chip.
* ``arcface``: insightface's 112x112 five-point template (eye centres, nose tip, mouth corners).
* ``omz``: the Open Model Zoo face-reidentification-retail-0095 128x128 five-point template.

Five points are in :data:`FIVE_POINTS` order. Chips are cut by dlib's own ``extract_image_chip``.

A chip transform is a 2x3 matrix mapping *chip* pixel coordinates to *image* coordinates, so it can warp any array
(an image, an occlusion map) and carry landmarks both ways.
"""

from __future__ import annotations

import dlib
import numpy as np

#: maskface's order of five facial points, in image terms: "left" is the image's left (the subject's right eye).
#: YuNet and RetinaFace output their points in this order, and the templates below expect it.
FIVE_POINTS = ("left eye", "right eye", "nose tip", "left mouth corner", "right mouth corner")

#: insightface's ArcFace destination points for a 112x112 chip.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)

#: Open Model Zoo face-reidentification-retail-0095's aligned points (its model card's normalised coordinates,
#: times 128) for a 128x128 chip.
OMZ_TEMPLATE = 128.0 * np.array(
    [[0.31556875, 0.46157411], [0.68262292, 0.46157411], [0.50026250, 0.64050536], [0.34947188, 0.82469196],
     [0.65343646, 0.82469196]],
    dtype=np.float64,
)

#: Five points for dlib's 150x150 chip at padding 0.25: where YuNet's points fall, on average, in dlib's own chips
#: (cut from dlib's 68 landmarks) of LFW people of View 2 folds 1-5, made mirror-symmetric. Chips cut from YuNet's
#: points with it are the closest to dlib's of the templates tried; tools/make_dlib5_template.py measures them on
#: folds 6-10 (docs/results/dlib5-template.md).
DLIB_TEMPLATE = np.array(
    [[46.63, 44.71], [102.37, 44.71], [74.50, 76.24], [50.80, 100.89], [98.20, 100.89]],
    dtype=np.float64,
)

#: Chip geometry -> (five-point template, the chip side it is given for).
TEMPLATES = {"dlib": (DLIB_TEMPLATE, 150), "arcface": (ARCFACE_TEMPLATE, 112), "omz": (OMZ_TEMPLATE, 128)}


def dlib_chip_matrix(landmarks: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Chip-to-image matrix of ``dlib.get_face_chip(img, shape, size, padding)`` for 68 or 5 dlib landmarks."""
    points = dlib.points([dlib.point(round(x), round(y)) for x, y in np.asarray(landmarks)])
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), points)
    details = dlib.get_face_chip_details(shape, size, padding)
    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    # dlib maps chip corners (0,0), (cols-1,0), (0,rows-1) to the rotated rect corners.
    src = np.array([[0, 0], [details.cols - 1, 0], [0, details.rows - 1]], dtype=np.float64)
    corners = np.array([[rect.left(), rect.top()], [rect.right(), rect.top()], [rect.left(), rect.bottom()]])
    dst = (corners - [cx, cy]) @ rotation.T + [cx, cy]
    return np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst).T


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) taking ``src`` points to ``dst`` points (Umeyama, 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_c.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def arcface_points(landmarks: np.ndarray) -> np.ndarray:
    """The five ArcFace points (eye centres, nose tip, mouth corners) from 68 iBUG landmarks."""
    lm = np.asarray(landmarks, np.float64)
    if len(lm) != 68:
        raise ValueError(f"ArcFace alignment needs 68 landmarks, got {len(lm)}")
    return np.array([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def five_point_template(chip: str, size: int, padding: float = 0.25) -> np.ndarray:
    """The five-point template of a chip geometry for a ``size x size`` chip; ``padding`` (dlib only) widens the
    chip around the face as ``dlib.get_face_chip``'s padding does."""
    if chip not in TEMPLATES:
        raise ValueError(f"unknown chip geometry {chip!r}; choose from {sorted(TEMPLATES)}")
    template, side = TEMPLATES[chip]
    unit = template / side
    if chip == "dlib":
        unit = (unit - 0.5) * (1 + 2 * 0.25) / (1 + 2 * padding) + 0.5
    return unit * size


def five_point_chip_matrix(points: np.ndarray, chip: str, size: int, padding: float = 0.25) -> np.ndarray:
    """Chip-to-image matrix from five points (:data:`FIVE_POINTS` order): the least-squares similarity that takes
    them to the chip geometry's template."""
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"five-point alignment needs 5 x 2 points, got shape {points.shape}")
    return invert_affine(umeyama_similarity(points, five_point_template(chip, size, padding)))


def shape_from_five(points: np.ndarray) -> np.ndarray:
    """A 68-point iBUG shape through five points (:data:`FIVE_POINTS` order), for code that reads 68 landmarks
    (mask synthesis): maskface's canonical shape placed by a least-squares similarity, then each eye, the lower
    nose and the mouth moved by the remaining offset of their point (the mouth interpolated between its corners),
    so that :func:`arcface_points` of the result gives the five points back exactly."""
    from maskface.face.geometry import canonical_shape

    points = np.asarray(points, np.float64)
    canon = canonical_shape()
    canon_five = arcface_points(canon)
    matrix = umeyama_similarity(canon_five, points)
    shape = transform_points(canon, matrix)
    offset = points - transform_points(canon_five, matrix)
    shape[36:42] += offset[0]
    shape[42:48] += offset[1]
    shape[30:36] += offset[2]
    along = (canon[48:68, 0] - canon[48, 0]) / (canon[54, 0] - canon[48, 0])
    along = np.clip(along, 0.0, 1.0)[:, None]
    shape[48:68] += (1 - along) * offset[3] + along * offset[4]
    return shape


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an ``(N, 2)`` array of points."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def chip_details(chip_to_image: np.ndarray, size: int) -> dlib.chip_details:
    """dlib's description of the ``size x size`` chip that a similarity ``chip_to_image`` matrix cuts: the chip's
    rectangle in the image before rotation, and the rotation (dlib maps the chip's corners to its corners)."""
    matrix = np.asarray(chip_to_image, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    angle = float(np.arctan2(matrix[1, 0], matrix[0, 0]))
    cx, cy = matrix @ [(size - 1) / 2.0, (size - 1) / 2.0, 1.0]
    half = scale * (size - 1) / 2.0
    return dlib.chip_details(dlib.drectangle(cx - half, cy - half, cx + half, cy + half), dlib.chip_dims(size, size),
                             angle)


def warp_chip(image: np.ndarray, chip_to_image: np.ndarray, size: int) -> np.ndarray:
    """Cut a ``size x size`` chip from ``image`` (HxW, or HxWxC) with dlib's ``extract_image_chip``.

    dlib's own sampler: bilinear, 0 outside the image, and its image pyramid first when the face is more than
    twice the chip's size, so a dlib chip equals ``dlib.get_face_chip`` byte for byte. ``chip_to_image`` must be a
    similarity (rotation, scale, shift), as every chip matrix of this module is.
    """
    details = chip_details(chip_to_image, size)
    image = np.ascontiguousarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        return dlib.extract_image_chip(image, details)
    return np.stack([dlib.extract_image_chip(np.ascontiguousarray(image[..., c]), details)
                     for c in range(image.shape[2])], axis=-1)
