"""Face alignment: warp a face to a canonical chip from its landmarks.

Two chip geometries:

* ``dlib``: dlib's ``get_face_chip`` (default 150x150, padding 0.25), the input of dlib's recogniser. The geometry
  comes from ``dlib.get_face_chip_details``; chips are cut by dlib's own ``extract_image_chip``.
* ``arcface``: insightface's 112x112 five-point template (eye centres, nose tip, mouth corners), by a least-squares
  similarity transform.

A chip transform is a 2x3 matrix mapping *chip* pixel coordinates to *image* coordinates, so it can warp any array
(an image, an occlusion map) and carry landmarks both ways.
"""

from __future__ import annotations

import dlib
import numpy as np

#: insightface's ArcFace destination points for a 112x112 chip.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


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


def arcface_chip_matrix(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Chip-to-image matrix of the ArcFace template, scaled to ``size``."""
    template = ARCFACE_TEMPLATE * (size / 112.0)
    return invert_affine(umeyama_similarity(arcface_points(landmarks), template))


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
