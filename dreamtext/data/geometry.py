"""Geometry of the model window (DESIGN §6 preprocessing, generalised to a non-square model window).

Coordinates are continuous pixel coordinates: the image spans ``[0, W] × [0, H]``
and pixel ``(i, j)`` covers ``[j, j+1] × [i, i+1]``. Quads, char quads and the
3×3 matrices all use this convention; :func:`warp` converts to OpenCV's
pixel-centre convention internally, so a mask warped with the matrix lands
exactly on the quad mapped with the same matrix.

The context window (:func:`context_window`):
1. pad the image to the model's aspect ratio ``W/H`` (centred, replicated borders);
2. when the word covers less than ``min_word_area_frac`` of that padded image,
   take a window of the model's aspect around the word with area
   ``area(word) / min_word_area_frac``, and never smaller than
   ``context_scale ×`` the word's extent; clamp it inside the padded image;
3. resize the window to ``(H, W)``.
With a square model and ``min_word_area_frac = 0.04`` this is the reference's
"pad to square, crop a square of side max(√(area/0.04), word side)".
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import RegionError


def quad_area(quad: np.ndarray) -> float:
    """Area of a (4, 2) polygon (shoelace)."""
    x, y = np.asarray(quad, np.float64).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def apply_matrix(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (..., 2) points with a 3×3 matrix (affine or projective)."""
    pts = np.asarray(pts, np.float64)
    flat = pts.reshape(-1, 2)
    p = np.concatenate([flat, np.ones((len(flat), 1))], 1) @ np.asarray(matrix, np.float64).T
    return (p[:, :2] / p[:, 2:3]).reshape(pts.shape).astype(np.float32)


def bbox(points: np.ndarray, margin: float, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) around points, grown by margin and clipped to the image."""
    h, w = hw
    x0 = int(np.floor(points[:, 0].min() - margin)); y0 = int(np.floor(points[:, 1].min() - margin))
    x1 = int(np.ceil(points[:, 0].max() + margin)); y1 = int(np.ceil(points[:, 1].max() + margin))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def translate(x0: float, y0: float) -> np.ndarray:
    """The 3×3 matrix that shifts points by (x0, y0)."""
    return np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)


def quad_height(quad: np.ndarray) -> float:
    """Mean length of the quad's left and right sides (TL→BL, TR→BR): the text height in pixels."""
    return float(0.5 * (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])))


def enlargement(matrix: np.ndarray) -> float:
    """How many image pixels one window pixel covers (along a side) for a window ``matrix`` (image → window)."""
    return float(1.0 / np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:2, :2]))))


def window_to_box(crop: np.ndarray, matrix: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A model-window crop (h, w[, c]) warped back to the image box ``(x0, y0, x1, y1)``: ``matrix`` maps image
    pixels to window pixels (``context_window``), the result is the box's (y1 − y0, x1 − x0[, c]) — the
    paste-back's enlargement (bilinear), and the refiner's training input made the same way."""
    x0, y0, x1, y1 = box
    return warp(crop, translate(-x0, -y0) @ np.linalg.inv(matrix), (y1 - y0, x1 - x0), border="replicate")


def context_window(quad, image_hw, out_hw, min_word_area_frac: float, context_scale: float = 1.0) -> np.ndarray:
    """The 3×3 matrix (float64) from image pixel coordinates to model pixel coordinates (see module doc)."""
    quad = np.asarray(quad, np.float64)
    if quad.shape != (4, 2) or not np.isfinite(quad).all():
        raise RegionError(f"a region must be 4 finite (x, y) points, got shape {quad.shape}")
    ih, iw = (float(v) for v in image_hw[:2])
    oh, ow = (float(v) for v in out_hw)
    if ih <= 0 or iw <= 0:
        raise RegionError(f"image size {image_hw} is empty")
    aspect = ow / oh
    # 1. the padded frame (centred): [fx0, fx0 + fw] × [fy0, fy0 + fh] in image coordinates
    fw, fh = (ih * aspect, ih) if iw / ih < aspect else (iw, iw / aspect)
    fx0, fy0 = (iw - fw) / 2.0, (ih - fh) / 2.0
    (x0, y0), (x1, y1) = quad.min(0), quad.max(0)
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    area = max(quad_area(quad), 1.0)
    wx0, wy0, ww = fx0, fy0, fw
    if area < min_word_area_frac * fw * fh:
        # 2. a window of the model's aspect around the word
        wh = np.sqrt(area / min_word_area_frac / aspect)
        s = max(1.0, context_scale * bh / wh, context_scale * bw / (aspect * wh))
        wh *= s
        ww = aspect * wh
        if ww >= fw:
            wx0, wy0, ww = fx0, fy0, fw
        else:
            cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
            wx0 = min(max(cx - ww / 2.0, fx0), fx0 + fw - ww)
            wy0 = min(max(cy - wh / 2.0, fy0), fy0 + fh - wh)
    scale = ow / ww
    return np.array([[scale, 0.0, -wx0 * scale], [0.0, scale, -wy0 * scale], [0.0, 0.0, 1.0]], np.float64)


_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT101}
_INTERP = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}


def _centre_convention(matrix: np.ndarray) -> np.ndarray:
    """Continuous-coordinate matrix → OpenCV's (pixel centres at integers): T(-½) · M · T(½)."""
    t = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], np.float64)
    ti = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]], np.float64)
    return ti @ np.asarray(matrix, np.float64) @ t


def warp(image: np.ndarray, matrix: np.ndarray, out_hw, border: str = "replicate", interpolation: str = "linear",
         border_value: float = 0.0) -> np.ndarray:
    """Apply a 3×3 matrix (from :func:`context_window`, or any homography) to an (h, w[, c]) array.

    Strong downscaling first area-averages the image (no aliasing; thin strokes
    keep their coverage). Any number of channels; bool arrays come back as
    float32 coverage in [0, 1].
    """
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {sorted(_BORDERS)}, got {border!r}")
    arr = np.asarray(image)
    as_coverage = arr.dtype == np.bool_
    if as_coverage:  # uint8 0/255 resizes and warps several times faster than float32
        arr = arr.view(np.uint8) * np.uint8(255)
    m = np.asarray(matrix, np.float64)
    oh, ow = int(out_hw[0]), int(out_hw[1])
    # Only the part of the image that the output window sees (plus a margin) is resized and warped.
    inv = np.linalg.inv(m)
    hom = np.array([[0, 0, 1], [ow, 0, 1], [ow, oh, 1], [0, oh, 1]], np.float64) @ inv.T
    # (w of one sign at every output corner: the output rectangle does not cross the homography's horizon,
    # so the source region is the box of the mapped corners.)
    w = hom[:, 2]
    if (np.all(w > 1e-9) or np.all(w < -1e-9)) and np.isfinite(hom).all():
        corners = hom[:, :2] / hom[:, 2:3]
        margin = 2.0 + 2.0 / max(float(np.sqrt(abs(np.linalg.det(m[:2, :2])))), 1e-6)
        x0 = int(max(0, np.floor(corners[:, 0].min() - margin)))
        y0 = int(max(0, np.floor(corners[:, 1].min() - margin)))
        x1 = int(min(arr.shape[1], np.ceil(corners[:, 0].max() + margin)))
        y1 = int(min(arr.shape[0], np.ceil(corners[:, 1].max() + margin)))
        if x1 > x0 and y1 > y0 and (x0 > 0 or y0 > 0 or x1 < arr.shape[1] or y1 < arr.shape[0]):
            arr = arr[y0:y1, x0:x1]
            m = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2])) / max(m[2, 2] ** 2, 1e-12)))
    if scale < 0.66 and interpolation == "linear" and min(arr.shape[:2]) > 1:
        # Pre-shrink by area averaging so the remaining warp scales by ~1.5 (linear interpolation is then exact enough).
        f = scale * 1.5
        nh, nw = max(1, round(arr.shape[0] * f)), max(1, round(arr.shape[1] * f))
        sy, sx = nh / arr.shape[0], nw / arr.shape[1]
        arr = _per4(arr, lambda a: cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA))
        m = m @ np.array([[1 / sx, 0, 0], [0, 1 / sy, 0], [0, 0, 1]], np.float64)
    mc = _centre_convention(m)
    flags = _INTERP[interpolation]
    bm = _BORDERS[border]
    if abs(mc[2, 0]) < 1e-12 and abs(mc[2, 1]) < 1e-12:
        fn = lambda a: cv2.warpAffine(a, mc[:2] / mc[2, 2], (ow, oh), flags=flags, borderMode=bm,  # noqa: E731
                                      borderValue=border_value)
    else:
        fn = lambda a: cv2.warpPerspective(a, mc, (ow, oh), flags=flags, borderMode=bm,  # noqa: E731
                                           borderValue=border_value)
    out = _per4(arr, fn)
    return out.astype(np.float32) * (1.0 / 255.0) if as_coverage else out


def _per4(arr: np.ndarray, fn) -> np.ndarray:
    """Run an OpenCV op that takes ≤ 4 channels over any number of channels."""
    if arr.ndim == 2 or arr.shape[2] <= 4:
        out = fn(np.ascontiguousarray(arr))
        return out[..., None] if arr.ndim == 3 and out.ndim == 2 else out
    return np.concatenate([_per4(arr[..., i:i + 4], fn) for i in range(0, arr.shape[2], 4)], axis=2)


def fill_quad(quad: np.ndarray, out_hw) -> np.ndarray:
    """float32 (H, W) mask, 1 where the pixel centre lies inside the quad (even-odd rule, any 4-gon)."""
    h, w = int(out_hw[0]), int(out_hw[1])
    q = np.asarray(quad, np.float64)
    mask = np.zeros((h, w), np.float32)
    x0, y0 = np.floor(q.min(0)).astype(int).clip(0)
    x1 = int(min(w, np.ceil(q[:, 0].max()) + 1))
    y1 = int(min(h, np.ceil(q[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return mask
    py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    for (ax, ay), (bx, by) in zip(q, np.roll(q, -1, axis=0)):
        if ay == by:
            continue
        crosses = (ay > py) != (by > py)
        x_at = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < x_at)
    mask[y0:y1, x0:x1] = inside
    return mask


def rectify_word(image: np.ndarray, quad: np.ndarray, out_hw) -> np.ndarray:
    """The word straightened into an upright (H, W) crop, keeping its aspect ratio.

    The quad is mapped onto a centred rectangle of height H and width
    min(W, H × word aspect); the rest of the crop continues the image around the
    word (replicated at the image border), so a one-letter word is not smeared
    across the crop.
    """
    oh, ow = int(out_hw[0]), int(out_hw[1])
    q = np.asarray(quad, np.float64)
    qw = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    qh = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    tw = min(float(ow), oh * qw / max(qh, 1e-6))
    x0 = (ow - tw) / 2
    dst = np.array([[x0, 0], [x0 + tw, 0], [x0 + tw, oh], [x0, oh]], np.float32)
    h = cv2.getPerspectiveTransform(q.astype(np.float32), dst).astype(np.float64)
    return warp(image, h, (oh, ow), border="replicate")


def loosen_quad(quad: np.ndarray, rng: np.random.Generator, slack: float) -> np.ndarray:
    """``quad`` (4, 2) TL, TR, BR, BL grown outwards: by U(0, ``slack``) of its width along its reading
    direction and U(0, ``slack``/2) of its height across it, each split at random between the two sides.

    The synthetic quads are the ink boxes, a fit no user's box and no other word's box has: a model trained
    on them alone writes worse into a box cut for another word (BENCHMARKS.md, "Why editing reads worse
    than reconstruction"). Growing only keeps the word's ink inside the region the model must fill.
    """
    quad = np.asarray(quad, np.float64)
    along = 0.5 * ((quad[1] - quad[0]) + (quad[2] - quad[3]))  # TL→TR: the width, in the reading direction
    across = 0.5 * ((quad[3] - quad[0]) + (quad[2] - quad[1]))  # TL→BL: the height
    grow_w, split_w, grow_h, split_h = rng.uniform(0.0, slack), rng.random(), rng.uniform(0.0, slack / 2), rng.random()
    left, right = grow_w * split_w, grow_w * (1.0 - split_w)
    top, bottom = grow_h * split_h, grow_h * (1.0 - split_h)
    return np.stack([quad[0] - left * along - top * across, quad[1] + right * along - top * across,
                     quad[2] + right * along + bottom * across, quad[3] - left * along + bottom * across])
