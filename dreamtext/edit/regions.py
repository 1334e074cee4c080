"""Regions of a photograph: parse a box or quad, check it, and find the window the model sees.

A region is a box ``(x0, y0, x1, y1)`` or a quad of 4 ``(x, y)`` points (top-left, top-right,
bottom-right, bottom-left of the text) in image pixels; :func:`parse_region` turns either into a float
(4, 2) quad or raises :class:`~dreamtext.errors.RegionError` naming what is wrong. :func:`window_matrix`
is the image → model-crop transform of DESIGN §7: tilted text is rotated upright first, then the same
context window training cuts (:func:`dreamtext.data.transforms.context_window`).
"""

from __future__ import annotations

import numpy as np

from ..errors import RegionError
from .paste import translate


def box_to_quad(box) -> np.ndarray:
    """(x0, y0, x1, y1) → float32 (4, 2) quad TL, TR, BR, BL."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise RegionError(f"box {_fmt(box)} has zero area: need x0 < x1 and y0 < y1")
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


MIN_REGION_PX = 2  # a region's shortest side (CLI, --spec, API and web page alike)


def parse_region(region, image_hw: tuple[int, int]) -> np.ndarray:
    """A box, a quad (4×2 or 8 numbers) or a ``{"box"|"quad": ...}`` dict → checked float32 (4, 2).

    Raises :class:`RegionError` for malformed regions, regions of zero area,
    quads not in the order top-left, top-right, bottom-right, bottom-left, and
    regions reaching outside the ``(H, W)`` image.
    """
    if isinstance(region, dict):
        keys = [k for k in ("box", "quad") if k in region]
        if len(keys) != 1:
            raise RegionError(f"a region needs exactly one of 'box' or 'quad', got keys {sorted(region)}")
        value = region[keys[0]]
        if keys[0] == "box":
            return _check_quad(box_to_quad(_numbers(value, 4, "box")), image_hw, value)
        return _check_quad(_numbers(value, 8, "quad").reshape(4, 2).astype(np.float32), image_hw, value)
    flat = _numbers(region, None, "region")
    if flat.size == 4:
        return _check_quad(box_to_quad(flat), image_hw, region)
    if flat.size == 8:
        return _check_quad(flat.reshape(4, 2).astype(np.float32), image_hw, region)
    raise RegionError(f"region {_fmt(region)} must be a box (x0, y0, x1, y1) or a quad of 4 (x, y) points")


def _numbers(value, n: int | None, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RegionError(f"{what} {_fmt(value)} is not a list of numbers") from None
    if n is not None and arr.size != n:
        raise RegionError(f"{what} {_fmt(value)} needs {n} numbers, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise RegionError(f"{what} {_fmt(value)} has a non-finite coordinate")
    return arr


def _check_quad(quad: np.ndarray, image_hw, given) -> np.ndarray:
    h, w = image_hw
    # Shoelace area; positive for TL→TR→BR→BL with y pointing down.
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    edges = np.roll(quad, -1, axis=0).astype(np.float64) - quad
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    mixed = np.any(turns > 1e-9) and np.any(turns < -1e-9)  # a bow-tie or a dent: not convex
    if abs(area) < 1.0 and not mixed:
        raise RegionError(f"region {_fmt(given)} has zero area")
    if mixed or area < 0 or np.any(turns <= 0):
        raise RegionError(f"quad {_fmt(given)} is not a convex quadrilateral in the order "
                          "top-left, top-right, bottom-right, bottom-left")
    sides = np.hypot(edges[:, 0], edges[:, 1])  # TL→TR, TR→BR, BR→BL, BL→TL
    if sides.min() < MIN_REGION_PX:
        raise RegionError(f"region {_fmt(given)} is {0.5 * (sides[0] + sides[2]):.3g}×{0.5 * (sides[1] + sides[3]):.3g} "
                          f"px; a region needs at least {MIN_REGION_PX}×{MIN_REGION_PX} px")
    tol = 0.5
    if quad[:, 0].min() < -tol or quad[:, 1].min() < -tol or quad[:, 0].max() > w + tol or quad[:, 1].max() > h + tol:
        raise RegionError(f"region {_fmt(given)} reaches outside the {w}×{h} image")
    return quad.astype(np.float32)


MIN_CHAR_HEIGHT_PX = 8  # a chunked text's characters need this much height in the photo to be legible
MIN_CHAR_WIDTH_PX = 4  # and this much of the region's width each


def check_legible(quad: np.ndarray, text: str, max_len: int) -> None:
    """Refuse a region too small for a long text (one written in several chunks) at a legible size: the
    message gives what a character needs and what the region has. Text of one chunk keeps the 2×2 px rule."""
    if len(text) <= max_len and " " not in text:
        return
    q = np.asarray(quad, np.float64)
    width = 0.5 * (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3]))
    height = 0.5 * (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1]))
    per_char = width / len(text)
    if height < MIN_CHAR_HEIGHT_PX or per_char < MIN_CHAR_WIDTH_PX:
        raise RegionError(f"region {_fmt(quad)} is too small for {text!r} ({len(text)} characters): a character "
                          f"needs at least {MIN_CHAR_HEIGHT_PX} px of height and {MIN_CHAR_WIDTH_PX} px of width; "
                          f"the region has {height:.0f} px of height and {per_char:.1f} px of width per character")


def _fmt(value) -> str:
    try:
        return "(" + ", ".join(f"{float(v):g}" for v in np.asarray(value, dtype=np.float64).reshape(-1)) + ")"
    except (TypeError, ValueError):
        return repr(value)


def text_angle(quad: np.ndarray) -> float:
    """The text line's angle in degrees (mean direction of the top and bottom edges; y points down)."""
    q = np.asarray(quad, np.float64)
    d = (q[1] - q[0]) + (q[2] - q[3])
    return float(np.degrees(np.arctan2(d[1], d[0])))


def upright_rotation(quad: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Rotation (3, 3) that makes the quad's text line horizontal, and the rotated image's (H, W).

    The whole image is rotated about its centre and shifted so the rotated
    image starts at (0, 0): the context window then sees upright text, with
    the photo around it (replicated at the borders) as context.
    """
    h, w = (float(v) for v in image_hw)
    a = np.radians(-text_angle(quad))
    c, s_ = np.cos(a), np.sin(a)
    rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]], np.float64) @ translate(-w / 2, -h / 2)
    from ..data.geometry import apply_matrix

    corners = apply_matrix(rot, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64))
    lo, hi = corners.min(0), corners.max(0)
    rot = translate(-lo[0], -lo[1]) @ rot
    return rot, (int(np.ceil(hi[1] - lo[1])), int(np.ceil(hi[0] - lo[0])))


def window_matrix(quad: np.ndarray, image_hw: tuple[int, int], cfg) -> np.ndarray:
    """Image pixels → model pixels for one region: training's context window (§6), upright.

    A region tilted by more than ``cfg.sample.rectify_deg`` is first rotated
    upright (:func:`upright_rotation`); then :func:`dreamtext.data.transforms.context_window`
    pads to the model's aspect, crops around small words and resizes, exactly
    as for the training samples.
    """
    from ..data.geometry import apply_matrix, context_window

    pre, frame_hw = np.eye(3), tuple(image_hw)
    if cfg.sample.rectify_deg > 0 and abs(text_angle(quad)) > cfg.sample.rectify_deg:
        pre, frame_hw = upright_rotation(quad, image_hw)
    window = context_window(apply_matrix(pre, quad), frame_hw, tuple(cfg.image_size),
                            cfg.data.min_word_area_frac, cfg.data.context_scale)
    return window @ pre
