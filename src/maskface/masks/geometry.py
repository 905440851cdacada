"""Mask outlines from 68 iBUG landmarks, computed in a roll-free face frame and mapped back to the image.

The face frame has its x axis from the left to the right eye centre and its unit is the inter-ocular distance,
so every rule below ("a quarter eye-distance under the lower eyelid") holds at any scale and roll.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JAW = slice(0, 17)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


@dataclass(frozen=True)
class FaceFrame:
    """Similarity transform between image pixels and the face frame (origin between the eyes, unit = eye distance)."""

    origin: np.ndarray
    rotation: np.ndarray  # 2x2, image = origin + scale * rotation @ local
    scale: float

    @classmethod
    def from_landmarks(cls, lm: np.ndarray) -> FaceFrame:
        left, right = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0)
        axis = right - left
        scale = float(np.hypot(*axis)) or 1.0
        cos, sin = axis / scale
        return cls((left + right) / 2.0, np.array([[cos, -sin], [sin, cos]]), scale)

    def to_local(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.origin) @ self.rotation / self.scale

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return self.origin + self.scale * np.asarray(points, np.float64) @ self.rotation.T


def smooth_curve(points: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Chaikin corner cutting of an open polyline: rounder outlines from a few control points."""
    pts = np.asarray(points, np.float64)
    for _ in range(iterations):
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        pts = np.vstack([pts[:1], np.stack([q, r], 1).reshape(-1, 2), pts[-1:]])
    return pts


@dataclass(frozen=True)
class Fit:
    """How a mask sits: nose-bridge height (0 = between the eyes, 1 = nose tip), how far it drops under the
    chin and bulges beyond the jaw (in eye distances), and the peak of the top edge at the nose."""

    nose_height: float = 0.45
    chin_drop: float = 0.15
    side_bulge: float = 0.06
    nose_peak: float = 0.0


def mask_outline(lm: np.ndarray, fit: Fit, shape: str) -> tuple[np.ndarray, FaceFrame, dict[str, np.ndarray]]:
    """The closed mask polygon in image pixels for one mask ``shape`` (surgical, n95, kn95, cloth, gas).

    Returns the polygon, the face frame, and named local-frame anchor points the renderer uses for details
    (pleats, seams, straps, filters).
    """
    frame = FaceFrame.from_landmarks(lm)
    loc = frame.to_local(lm)
    jaw = loc[JAW].copy()
    eye_bottom = max(loc[40, 1], loc[41, 1], loc[46, 1], loc[47, 1])
    nose_top, nose_tip = loc[27], loc[30]
    nose = nose_top + fit.nose_height * (nose_tip - nose_top)
    # Keep the top edge under the eyes whatever the fit: at least 0.12 eye-distances under the lower lids.
    under_eye_y = max(eye_bottom + 0.12, nose[1] + 0.05)
    nose_y = min(nose[1] - fit.nose_peak, under_eye_y)
    cheek_l = jaw[1] + 0.35 * (jaw[2] - jaw[1])
    cheek_r = jaw[15] + 0.35 * (jaw[14] - jaw[15])
    top = np.array([
        cheek_l,
        [loc[36, 0], under_eye_y + 0.04],
        [loc[39, 0], under_eye_y],
        [nose[0], nose_y],
        [loc[42, 0], under_eye_y],
        [loc[45, 0], under_eye_y + 0.04],
        cheek_r,
    ])
    if shape == "surgical":  # a flatter, more rectangular top edge
        top[1:6, 1] = 0.5 * top[1:6, 1] + 0.5 * (under_eye_y + 0.02)
        top[3, 1] = min(top[3, 1], under_eye_y - 0.02)
    # Lower edge: the jaw from right to left, pushed outward and, around the chin, downward.
    centre = np.array([nose[0], (nose_y + jaw[8, 1]) / 2.0])
    lower = jaw[14:1:-1].copy() if shape != "gas" else jaw[13:2:-1].copy()
    outward = lower - centre
    outward /= np.linalg.norm(outward, axis=1, keepdims=True) + 1e-9
    lower += fit.side_bulge * outward
    chin_weight = np.exp(-(((lower[:, 0] - jaw[8, 0]) / 0.45) ** 2))
    drop = {"n95": 1.3, "kn95": 1.2, "gas": 0.8}.get(shape, 1.0) * fit.chin_drop
    lower[:, 1] += drop * chin_weight
    if shape == "kn95":  # pointed chin along the centre seam
        lower[:, 1] += 0.08 * np.exp(-(((lower[:, 0] - jaw[8, 0]) / 0.12) ** 2))
    side_r = np.array([cheek_r, lower[0]])
    side_l = np.array([lower[-1], cheek_l])
    closed = np.vstack([smooth_curve(top), smooth_curve(np.vstack([side_r, lower[1:-1], side_l]))])
    anchors = {"nose": np.array([nose[0], nose_y]), "chin": jaw[8] + [0, drop], "cheek_l": cheek_l,
               "cheek_r": cheek_r, "ear_l": jaw[0], "ear_r": jaw[16], "jaw_l": jaw[4], "jaw_r": jaw[12],
               "under_eye_y": np.array([under_eye_y]), "mouth": loc[48:68].mean(0)}
    return frame.to_image(closed), frame, anchors
