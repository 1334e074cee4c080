"""The glyph prior (DESIGN §12): the target string in one plain font, fitted into its quad.

``render_glyph(text, quad, out_hw)`` draws ``text`` white on black in the plain
font (:func:`dreamtext.data.fonts.plain_font_path`), takes the ink's bounding
box and maps it onto ``quad`` (so rotated and perspective regions get a warped
glyph). Used by the model-ready transform and by the editing pipeline.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ..charset import validate_text
from ..errors import RegionError
from .fonts import load_font, plain_font_path
from .geometry import warp

GLYPH_FONT_PX = 48  # the line is drawn at this size, then warped (area-averaged when shrunk)


@functools.lru_cache(maxsize=2048)
def _line(text: str) -> np.ndarray:
    """float32 (h, w) coverage of ``text`` cropped to its ink box."""
    from PIL import Image, ImageDraw

    font = load_font(plain_font_path(), GLYPH_FONT_PX)
    x0, y0, x1, y1 = font.getbbox(text)
    img = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)), 0)
    ImageDraw.Draw(img).text((-x0, -y0), text, font=font, fill=255)
    return np.asarray(img, np.float32) / 255.0


def render_glyph(text: str, quad, out_hw) -> np.ndarray:
    """float32 (H, W) in [0, 1]: ``text`` rendered in the plain font and fitted into ``quad`` (4, 2)."""
    validate_text(text, max_len=max(len(text), 1))
    quad = np.asarray(quad, np.float32)
    if quad.shape != (4, 2) or not np.isfinite(quad).all():
        raise RegionError(f"glyph quad must be 4 finite (x, y) points, got shape {quad.shape}")
    line = _line(text)
    lh, lw = line.shape
    src = np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]], np.float32)
    h = cv2.getPerspectiveTransform(src, quad).astype(np.float64)
    return np.clip(warp(line, h, out_hw, border="constant"), 0.0, 1.0)
