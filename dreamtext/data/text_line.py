"""One text line of the synthetic generator (DESIGN §6): its glyphs rasterised once per process and laid out,
and the line's shape in the scene (an arc, a homography, ink-box fits and quad corners).

Split from :mod:`dreamtext.data.render`, the scene generator that uses them.
"""

from __future__ import annotations

import functools

import numpy as np

from .fonts import load_font


@functools.lru_cache(maxsize=65536)
def glyph_bitmap(font_path: str, size: int, ch: str) -> tuple[np.ndarray, int, int, float, tuple[int, int, int, int]]:
    """One character, rendered once per process: coverage uint8 (h, w), its top-left offset from the
    baseline origin (ox, oy), its advance, and its ink box (x0, y0, x1, y1) inside the bitmap."""
    font = load_font(font_path, size)
    core, (ox, oy) = font.getmask2(ch, mode="L", anchor="ls")
    w, h = core.size
    bitmap = np.frombuffer(bytes(core), np.uint8).reshape(h, w) if w and h else np.zeros((0, 0), np.uint8)
    ys, xs = np.nonzero(bitmap)
    ink = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
    return bitmap, ox, oy, float(font.getlength(ch)), ink


def layout_line(text: str, font_path: str, size: int, tracking: float):
    """Place the glyphs on a text line (advances summed, ``tracking`` extra pixels between letters).

    Returns alpha float32 (lh, lw) in [0, 1], owner uint8 (lh, lw) (i + 1 of the
    character with the most coverage, 0 = none), and ink boxes float32 (n, 4) as
    (x0, y0, x1, y1) in line pixels.
    """
    font = load_font(font_path, size)
    ascent, descent = font.getmetrics()
    pad = 2 + size // 8
    glyphs = [glyph_bitmap(font_path, size, ch) for ch in text]
    pen = np.concatenate([[0.0], np.cumsum([g[3] + tracking for g in glyphs[:-1]])]) + pad
    xs0 = [int(round(p)) + g[1] for p, g in zip(pen, glyphs)]
    lw = max(max(x + g[0].shape[1] for x, g in zip(xs0, glyphs)), int(pen[-1] + glyphs[-1][3])) + pad
    lh = ascent + descent + 2 * pad
    base_y = ascent + pad
    alpha = np.zeros((lh, lw), np.uint8)
    owner = np.zeros((lh, lw), np.uint8)
    boxes = np.zeros((len(text), 4), np.float32)
    for i, (x0, (g, _, oy, adv, ink)) in enumerate(zip(xs0, glyphs)):
        gh, gw = g.shape
        x0 = min(max(x0, 0), lw - gw)
        y0 = min(max(base_y + oy, 0), lh - gh)
        if ink[2] > ink[0]:
            boxes[i] = (x0 + ink[0], y0 + ink[1], x0 + ink[2], y0 + ink[3])
        else:  # no ink at all: half the x-height above the baseline, as wide as its advance
            boxes[i] = (x0, base_y - ascent // 2, x0 + max(adv, 1), base_y)
            continue
        region = alpha[y0:y0 + gh, x0:x0 + gw]
        owner[y0:y0 + gh, x0:x0 + gw][g > region] = i + 1
        np.maximum(region, g, out=region)
    return alpha.astype(np.float32) * (1.0 / 255.0), owner, boxes


class Arc:
    """Bend a text line of width ``lw`` around a circle: total angle ``phi`` (radians, sign = up/down)."""

    def __init__(self, lw: float, lh: float, phi: float):
        self.cx, self.yc = lw / 2.0, lh / 2.0
        self.s = 1.0 if phi > 0 else -1.0
        self.R = lw / abs(phi)
        self.cy = self.yc + self.s * self.R  # circle centre (below the line for s = +1: a frown)

    def forward(self, pts: np.ndarray) -> np.ndarray:
        x, y = pts[:, 0], pts[:, 1]
        theta = (x - self.cx) / self.R
        rho = self.R + self.s * (self.yc - y)
        return np.stack([self.cx + rho * np.sin(theta), self.cy - self.s * rho * np.cos(theta)], -1)

    def inverse(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = X - self.cx, self.s * (self.cy - Y)
        rho = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dx, dy)
        return self.cx + self.R * theta, self.yc - self.s * (rho - self.R)


def box_quads(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) boxes → (n, 4, 2) quads TL, TR, BR, BL."""
    return boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.concatenate([pts, np.ones((len(pts), 1))], 1) @ H.T
    return p[:, :2] / p[:, 2:3]


def fit_ink_box(boxes: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """3×3 affine (float64) mapping the ink box of ``boxes`` (n, 4) onto the ink box of ``onto`` (m, 4),
    both (x0, y0, x1, y1) per character in line pixels: scaled along and across, then shifted."""
    def extent(b):
        return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()], np.float64)

    (x0, y0, x1, y1), (u0, v0, u1, v1) = extent(boxes), extent(onto)
    sx, sy = (u1 - u0) / max(x1 - x0, 1e-6), (v1 - v0) / max(y1 - y0, 1e-6)
    return np.array([[sx, 0.0, u0 - sx * x0], [0.0, sy, v0 - sy * y0], [0.0, 0.0, 1.0]])


def order_quad(pts: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Order the 4 corners of a rectangle as TL, TR, BR, BL for text running along ``direction``."""
    d = np.asarray(direction, np.float64)
    d = d / (np.linalg.norm(d) + 1e-9)
    down = np.array([-d[1], d[0]])  # image y points down: +90° from the reading direction
    c = pts.mean(0)
    along, across = (pts - c) @ d, (pts - c) @ down
    top = np.argsort(across)[:2]
    bottom = np.argsort(across)[2:]
    tl, tr = top[np.argsort(along[top])]
    bl, br = bottom[np.argsort(along[bottom])]
    return pts[[tl, tr, br, bl]].astype(np.float32)
