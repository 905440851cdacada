"""Procedural face-mask rendering: surgical, N95, KN95, cloth and gas masks drawn from 68 landmarks.

Every mask is drawn by code (no third-party images): an outline from :mod:`maskface.masks.geometry`, a fabric
colour and pattern, shading that follows the face's curvature and pose, the scene's own lighting carried over,
and type details (pleats and a nose wire, seams, a valve, filter cartridges, straps). The renderer also returns
the binary occlusion map: exactly the pixels the mask and its straps cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from maskface.masks.geometry import FaceFrame, Fit, mask_outline

#: Bump whenever a change alters rendered pixels: cached evaluation embeddings are keyed by it.
RENDER_VERSION = 1

MASK_TYPES = ("surgical", "n95", "kn95", "cloth", "gas")
PATTERNS = ("plain", "stripes", "dots", "plaid", "noise")

#: Base colours (RGB) per type; a sampled colour is one of these, jittered.
PALETTES: dict[str, list[tuple[int, int, int]]] = {
    "surgical": [(160, 205, 232), (236, 238, 240), (42, 44, 50), (238, 190, 204), (150, 212, 196)],
    "n95": [(236, 234, 226), (214, 214, 210), (240, 240, 236)],
    "kn95": [(238, 238, 238), (40, 40, 44), (150, 152, 158), (225, 200, 205)],
    "cloth": [(30, 50, 110), (150, 30, 40), (40, 40, 40), (90, 120, 70), (200, 170, 120), (120, 80, 150),
              (230, 230, 225), (60, 130, 170)],
    "gas": [(38, 40, 42), (62, 66, 64), (80, 82, 86)],
}


@dataclass(frozen=True)
class MaskStyle:
    """Everything that decides one mask's look; drawn by :func:`sample_style`, or set by hand."""

    type: str = "surgical"
    color: tuple[int, int, int] = (160, 205, 232)
    pattern: str = "plain"
    pattern_color: tuple[int, int, int] = (255, 255, 255)
    fit: Fit = field(default_factory=Fit)
    straps: bool = True
    valve: bool = False
    shading: float = 0.35
    lighting: float = 0.6
    texture_seed: int = 0


@dataclass(frozen=True)
class MaskConfig:
    """Distributions that :func:`sample_style` draws from; all ranges are (low, high), uniform."""

    types: tuple[str, ...] = MASK_TYPES
    patterns: tuple[str, ...] = PATTERNS
    pattern_probability: float = 0.5
    nose_height: tuple[float, float] = (0.3, 0.6)
    chin_drop: tuple[float, float] = (0.05, 0.3)
    side_bulge: tuple[float, float] = (0.02, 0.10)
    strap_probability: float = 0.8
    valve_probability: float = 0.3
    color_jitter: float = 18.0

    def __post_init__(self) -> None:
        unknown = set(self.types) - set(MASK_TYPES)
        if unknown or not self.types:
            raise ValueError(f"unknown mask type(s) {sorted(unknown)}; choose from {MASK_TYPES}")


def sample_style(rng: np.random.Generator, config: MaskConfig | None = None, mask_type: str | None = None) -> MaskStyle:
    """Draw a mask style: type, colour, pattern, fit and details."""
    config = config or MaskConfig()
    kind = mask_type or str(rng.choice(config.types))
    if kind not in MASK_TYPES:
        raise ValueError(f"unknown mask type {kind!r}; choose from {MASK_TYPES}")
    palette = PALETTES[kind]
    base = np.array(palette[rng.integers(len(palette))], np.float64)
    color = tuple(int(c) for c in np.clip(base + rng.normal(0, config.color_jitter, 3), 0, 255))
    pattern = "plain"
    if kind == "cloth" and rng.random() < config.pattern_probability * 1.6:
        pattern = str(rng.choice([p for p in config.patterns if p != "plain"] or ["plain"]))
    elif kind == "surgical" and rng.random() < config.pattern_probability * 0.2:
        pattern = "noise"
    pattern_color = tuple(int(c) for c in rng.integers(0, 256, 3))
    fit = Fit(nose_height=float(rng.uniform(*config.nose_height)), chin_drop=float(rng.uniform(*config.chin_drop)),
              side_bulge=float(rng.uniform(*config.side_bulge)),
              nose_peak=float(rng.uniform(0.0, 0.08)) if kind in ("kn95", "n95") else 0.0)
    return MaskStyle(type=kind, color=color, pattern=pattern, pattern_color=pattern_color, fit=fit,
                     straps=bool(rng.random() < config.strap_probability) or kind == "gas",
                     valve=kind == "n95" and bool(rng.random() < config.valve_probability),
                     shading=float(rng.uniform(0.2, 0.45)), lighting=float(rng.uniform(0.4, 0.8)),
                     texture_seed=int(rng.integers(2**31)))


def _pattern(style: MaskStyle, local: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A 0..1 map of where the pattern colour shows, from face-frame coordinates (so it follows pose)."""
    x, y = local
    if style.pattern == "stripes":
        return (np.sin(y * 2 * np.pi / 0.16) > 0.4).astype(np.float32)
    if style.pattern == "dots":
        return ((np.sin(x * 2 * np.pi / 0.18) * np.sin(y * 2 * np.pi / 0.18)) > 0.75).astype(np.float32)
    if style.pattern == "plaid":
        return 0.5 * (np.abs(np.sin(x * np.pi / 0.2)) < 0.25) + 0.5 * (np.abs(np.sin(y * np.pi / 0.2)) < 0.25)
    if style.pattern == "noise":
        rng = np.random.default_rng(style.texture_seed)
        grid = rng.random((6, 6)).astype(np.float32)
        h, w = x.shape
        return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1) * 0.5
    return np.zeros_like(x)


def _detail_lines(style: MaskStyle, anchors: dict[str, np.ndarray]) -> list[tuple[np.ndarray, float, float]]:
    """Type details as local-frame polylines: (points, width in eye distances, brightness multiplier)."""
    nose, chin = anchors["nose"], anchors["chin"]
    left, right = anchors["cheek_l"][0] + 0.08, anchors["cheek_r"][0] - 0.08
    lines: list[tuple[np.ndarray, float, float]] = []
    if style.type == "surgical":
        top = anchors["under_eye_y"][0]
        for t in (0.3, 0.5, 0.7):  # pleats: a shadow line with a highlight under it
            y = top + t * (chin[1] - top) * 0.85
            lines.append((np.array([[left, y], [right, y]]), 0.025, 0.72))
            lines.append((np.array([[left, y + 0.03], [right, y + 0.03]]), 0.02, 1.12))
        lines.append((np.array([[nose[0] - 0.35, top + 0.05], [nose[0] + 0.35, top + 0.05]]), 0.03, 1.15))
    elif style.type == "kn95":
        lines.append((np.array([nose + [0, 0.02], [nose[0], chin[1] + 0.05]]), 0.02, 0.7))
    elif style.type == "n95":
        y = 0.5 * (nose[1] + chin[1])
        lines.append((np.array([[left + 0.05, y], [nose[0], y + 0.05], [right - 0.05, y]]), 0.018, 0.8))
    elif style.type == "cloth":
        lines.append((np.array([nose + [0, 0.02], [nose[0], chin[1]]]), 0.012, 0.85))
    return lines


def render_mask(image: np.ndarray, landmarks: np.ndarray, style: MaskStyle) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``style`` on ``image`` (HxWx3 uint8) for a face with 68 ``landmarks`` (image pixels).

    Returns the masked image (a new array) and the occlusion map (HxW bool): every pixel the mask or its
    straps touch, anti-aliased edges included, so a completion model is asked to redraw all that changed.
    """
    if landmarks.shape != (68, 2):
        raise ValueError(f"mask rendering needs 68 landmarks, got an array of shape {landmarks.shape}")
    h, w = image.shape[:2]
    polygon, frame, anchors = mask_outline(landmarks, style.fit, style.type)
    straps = _strap_segments(style, frame, anchors)
    extent = np.vstack([polygon, *straps]) if straps else polygon
    x0, y0 = np.maximum(np.floor(extent.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(extent.max(0)).astype(int) + 3, [w, h])
    out = image.copy()
    occlusion = np.zeros((h, w), bool)
    if x1 <= x0 or y1 <= y0:
        return out, occlusion
    roi_w, roi_h = x1 - x0, y1 - y0
    shift = 4  # sub-pixel precision for cv2 drawing
    alpha = np.zeros((roi_h, roi_w), np.uint8)
    poly = np.round((polygon - [x0, y0]) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(alpha, [poly], 255, cv2.LINE_AA, shift)

    local = _local_grid(frame, x0, y0, roi_w, roi_h)
    layer, gain = _fabric(style, local, anchors, frame, (x0, y0))
    gain *= _scene_light(image[y0:y1, x0:x1], alpha > 127, frame.scale, style.lighting)
    layer *= gain[..., None]

    if straps:
        strap_alpha = np.zeros_like(alpha)
        width = max(1, round(0.025 * frame.scale * (3.0 if style.type == "gas" else 1.0)))
        for segment in straps:
            pts = np.round((segment - [x0, y0]) * (1 << shift)).astype(np.int32)
            cv2.polylines(strap_alpha, [pts], False, 255, width, cv2.LINE_AA, shift)
        strap_alpha[alpha > 0] = 0
        strap_color = np.array(style.color if style.type in ("gas", "cloth") else (238, 238, 238), np.float32)
        layer[strap_alpha > 0] = strap_color * 0.92
        alpha = np.maximum(alpha, strap_alpha)
    a = alpha[..., None].astype(np.float32) * np.float32(1 / 255)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    np.clip(layer, 0, 255, out=layer)
    out[y0:y1, x0:x1] = (roi + (layer - roi) * a + 0.5).astype(np.uint8)
    occlusion[y0:y1, x0:x1] = alpha > 0  # every pixel the mask touches, soft edges included
    return out, occlusion


def _local_grid(frame: FaceFrame, x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Face-frame coordinates (x, y) of every pixel of a ROI, as two contiguous float32 ``H x W`` arrays."""
    inverse = frame.rotation.T / frame.scale  # local = inverse @ (pixel - origin)
    xs = np.arange(x0, x0 + width, dtype=np.float32)[None, :] - np.float32(frame.origin[0])
    ys = np.arange(y0, y0 + height, dtype=np.float32)[:, None] - np.float32(frame.origin[1])
    m = inverse.astype(np.float32)
    return m[0, 0] * xs + m[0, 1] * ys, m[1, 0] * xs + m[1, 1] * ys


def _scene_light(roi: np.ndarray, inside: np.ndarray, eye_distance: float, strength: float) -> np.ndarray:
    """The face's low-frequency brightness under the mask relative to its mean, raised to ``strength``.

    Computed at quarter resolution: lighting is smooth, and a full-size blur of this width costs more than
    the rest of the rendering.
    """
    grey = cv2.cvtColor(roi, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    small = cv2.resize(grey, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, 0.06 * eye_distance))
    lit = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    mean = float(lit[inside].mean()) if inside.any() else float(lit.mean())
    return np.clip(lit / max(mean, 1.0), 0.55, 1.35) ** np.float32(strength)


def _fabric(style: MaskStyle, local: tuple[np.ndarray, np.ndarray], anchors: dict[str, np.ndarray], frame: FaceFrame,
            offset: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The mask's colour layer over the ROI (base colour, pattern, filters) and its brightness gain (curvature
    shading and type details such as pleats and seams)."""
    base = np.array(style.color, np.float32)
    layer = np.empty((*local[0].shape, 3), np.float32)
    layer[:] = base
    if style.pattern != "plain":
        weight = _pattern(style, local)[..., None].astype(np.float32)
        layer += (np.array(style.pattern_color, np.float32) - base) * weight
    # Curvature: the mask turns away from the light towards the cheeks; yaw moves the brightest line.
    centre_x = anchors["nose"][0]
    half_width = max(abs(anchors["cheek_r"][0] - centre_x), abs(centre_x - anchors["cheek_l"][0]), 0.3)
    u = (local[0] - np.float32(centre_x)) * np.float32(1 / half_width)
    v = (local[1] - np.float32(anchors["nose"][1])) * np.float32(
        1 / max(anchors["chin"][1] - anchors["nose"][1], 0.3))
    np.clip(v, 0, 1.3, out=v)
    detail = 1.0 - np.float32(style.shading) * (np.minimum(u * u, np.float32(1.44)) + np.float32(0.12) * v * v)
    if style.type == "gas":
        _draw_filters(layer, anchors, frame, offset, base)
    x0, y0 = offset
    for points, width, gain in _detail_lines(style, anchors):
        pts = np.round((frame.to_image(points) - [x0, y0]) * 16).astype(np.int32)
        cv2.polylines(detail, [pts], False, float(gain), max(1, round(width * frame.scale)), cv2.LINE_AA, 4)
    if style.valve:
        centre = frame.to_image(np.array([[anchors["cheek_r"][0] - 0.25, anchors["mouth"][1] + 0.05]]))[0]
        cv2.circle(detail, tuple(np.round((centre - [x0, y0]) * 16).astype(int)), round(0.12 * frame.scale * 16),
                   0.8, -1, cv2.LINE_AA, 4)
    return layer, detail


def _draw_filters(layer: np.ndarray, anchors: dict[str, np.ndarray], frame: FaceFrame, offset: tuple[int, int],
                  base: np.ndarray) -> None:
    """Two round filter cartridges low on the cheeks and a valve box on the chin."""
    x0, y0 = offset
    radius = 0.2 * frame.scale
    for side in ("jaw_l", "jaw_r"):
        centre_local = 0.55 * anchors[side] + 0.45 * anchors["mouth"]
        centre = frame.to_image(centre_local[None])[0] - [x0, y0]
        c = tuple(np.round(centre * 16).astype(int))
        cv2.circle(layer, c, round(radius * 16), tuple(float(v) for v in base * 0.55), -1, cv2.LINE_AA, 4)
        cv2.circle(layer, c, round(radius * 0.7 * 16), tuple(float(v) for v in base * 0.9 + 20), -1, cv2.LINE_AA, 4)
    valve = frame.to_image(np.array([anchors["mouth"] + [0, 0.12]]))[0] - [x0, y0]
    half = 0.09 * frame.scale
    cv2.rectangle(layer, tuple(np.round((valve - half) * 16).astype(int)),
                  tuple(np.round((valve + half) * 16).astype(int)), tuple(float(v) for v in base * 0.6), -1,
                  cv2.LINE_AA, 4)


def _strap_segments(style: MaskStyle, frame: FaceFrame, anchors: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Ear loops (or a head strap for gas masks) as image-space polylines from the mask edge to the ears."""
    if not style.straps:
        return []
    segments = []
    for cheek, ear, jaw, outward in (("cheek_l", "ear_l", "jaw_l", -1.0), ("cheek_r", "ear_r", "jaw_r", 1.0)):
        # Loops run back from the mask's corners to the ear, just outside the face contour at eye level.
        ear_top = anchors[ear] + [0.12 * outward, 0.02]
        ear_bottom = anchors[ear] + [0.10 * outward, 0.30]
        segments.append(frame.to_image(np.array([anchors[cheek], ear_top])))
        segments.append(frame.to_image(np.array([anchors[jaw], ear_bottom])))
    return segments


