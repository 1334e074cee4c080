"""The web page's input side, plain Python without Gradio: box lines, uploads, the preview.

:func:`parse_regions` reads the regions box (lines ``x0, y0, x1, y1, TEXT``),
:func:`load_upload` checks an uploaded file before decoding it, :func:`draw_boxes`
draws the preview; every problem is a :class:`~dreamtext.errors.DreamTextError`
naming it, which :class:`~dreamtext.app.EditService` shows in the status line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..edit.layout import check_phrase
from ..edit.regions import check_legible
from ..errors import ImageError, RegionError

_NUMBER = r"[-+]?\d+(?:\.\d*)?"
_REGION_LINE = re.compile(rf"^\s*({_NUMBER})\s*[, ]\s*({_NUMBER})\s*[, ]\s*({_NUMBER})\s*[, ]\s*({_NUMBER})\s*[, ]\s?(.*)$")


def format_region(box: tuple[float, float, float, float], text: str) -> str:
    """One line of the regions box: ``x0, y0, x1, y1, TEXT``."""
    return ", ".join(str(int(round(v))) for v in box) + ", " + text


def parse_regions(spec: str, image_wh: tuple[int, int], max_len: int, max_regions: int = 8
                  ) -> tuple[list[np.ndarray], list[str]]:
    """Lines ``x0, y0, x1, y1, TEXT`` → (quads float32 (4, 2) each, texts).

    Blank lines and lines starting with ``#`` are skipped. Corners may come in
    any order (a drag up-left gives x1 < x0). A box must lie inside the image
    of size ``image_wh = (W, H)`` and be at least 2 px on each side; the text
    must be writable by the model: a word or a phrase (:func:`~dreamtext.edit.layout.check_phrase`), legible in
    the box (:func:`~dreamtext.edit.regions.check_legible`).
    Every problem raises :class:`RegionError` / :class:`TextError` naming the line.
    """
    width, height = image_wh
    quads, texts = [], []
    lines = [(n, line) for n, line in enumerate((spec or "").splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise RegionError("no box given: click two opposite corners of the text on the photo, "
                          "or type a line 'x0, y0, x1, y1, TEXT'")
    if len(lines) > max_regions:
        raise RegionError(f"{len(lines)} boxes given; the page edits at most {max_regions} at once")
    for n, line in lines:
        m = _REGION_LINE.match(line)
        if m is None:
            raise RegionError(f"box line {n} ({line.strip()!r}) is not 'x0, y0, x1, y1, TEXT'")
        x0, y0, x1, y1 = (float(v) for v in m.groups()[:4])
        text = m.group(5).strip()
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise RegionError(f"box line {n} ({x0:g}, {y0:g}, {x1:g}, {y1:g}) reaches outside the "
                              f"{width}×{height} photo")
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise RegionError(f"box line {n} is {x1 - x0:g}×{y1 - y0:g} px; a box needs at least 2×2 px")
        if not text:
            raise RegionError(f"box line {n} has no text: write the new text after the four numbers")
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        check_legible(quad, check_phrase(text, max_len), max_len)
        quads.append(quad)
        texts.append(text)
    return quads, texts


def load_upload(path: str | os.PathLike | None, settings) -> np.ndarray:
    """The uploaded file → uint8 RGB (H, W, 3), or :class:`ImageError` saying why not.

    ``settings``: the server's :class:`~dreamtext.app.ServeSettings` (``max_upload_bytes``,
    ``max_upload_mb``, ``max_side``).

    The byte size and the dimensions (read from the header, before any pixel is
    decoded) are checked first, so a decompression bomb is refused cheaply.
    """
    from ..io_utils import open_image_checked, read_image_rgb

    if path is None:
        raise ImageError("no photo uploaded yet: upload a PNG or JPEG first")
    path = Path(path)
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        raise ImageError(f"the upload is {size / 2**20:.1f} MiB; the limit is {settings.max_upload_mb:g} MiB")
    # The user's own file name, never the server's temporary path (the upload keeps its name as the last part).
    try:
        with open_image_checked(path, path.name) as probe:
            width, height = probe.size
    except ImageError as e:
        if "megapixels" in str(e):
            raise
        raise ImageError(f"{path.name!r} is not an image this page can read (use PNG, JPEG or WebP)") from None
    if max(width, height) > settings.max_side:
        raise ImageError(f"the photo is {width}×{height} px; the longest side may be at most "
                         f"{settings.max_side} px (scale it down first)")
    return read_image_rgb(path, name=path.name)


def draw_boxes(image: np.ndarray, quads: list[np.ndarray], texts: list[str],
               pending: tuple[float, float] | None = None) -> np.ndarray:
    """The photo with each box outlined and labelled with its number: uint8 (H, W, 3).

    ``pending`` is a first corner clicked but not yet completed, drawn as a cross.
    """
    from PIL import Image, ImageDraw, ImageFont

    from ..visualize import char_colors

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    line_w = max(2, round(max(image.shape[:2]) / 300))
    colors = char_colors(max(1, len(quads)))
    font = ImageFont.load_default(size=max(10, 6 * line_w))  # Pillow's bundled scalable font
    for i, (quad, text) in enumerate(zip(quads, texts)):
        color = tuple(int(c) for c in colors[i])
        draw.polygon([tuple(p) for p in quad.tolist()], outline=color, width=line_w)
        x, y = quad[0]
        draw.text((x + line_w, max(0.0, y - 7 * line_w)), f"{i + 1}: {text}", fill=color, font=font)
    if pending is not None:
        x, y = pending
        r = 4 * line_w
        draw.line([(x - r, y), (x + r, y)], fill=(255, 0, 0), width=line_w)
        draw.line([(x, y - r), (x, y + r)], fill=(255, 0, 0), width=line_w)
    return np.asarray(canvas)
