"""A picture of what a data source yields: ground truth drawn over records, and the model-ready sample.

One row per record: the scene with its word quad (green), character quads
(yellow) and character masks (one colour per character); the model-ready
image; the same with the region mask outline and the resized character masks;
and the grayscale word crop the visual encoder reads. For edit pairs
(``dreamtext data preview synth --edit-pairs``), one row per pair: both
scenes, the masked source window the model is given and the target window.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from ..pixels import to_uint8
from .record import TextRecord

ROW_H = 96  # pixels per row of the grid


def _palette(n: int) -> np.ndarray:
    return np.array([colorsys.hsv_to_rgb(i / max(n, 1), 0.9, 1.0) for i in range(n)], np.float32) * 255


def _overlay_masks(img: np.ndarray, masks: np.ndarray | None, alpha: float = 0.55) -> np.ndarray:
    out = img.astype(np.float32)
    if masks is None:
        return img
    cols = _palette(len(masks))
    for m, c in zip(masks, cols):
        m = m.astype(bool)
        out[m] = out[m] * (1 - alpha) + c * alpha
    return out.clip(0, 255).astype(np.uint8)


def _draw_quads(im: Image.Image, word_quad, char_quads, scale: float) -> None:
    d = ImageDraw.Draw(im)
    if char_quads is not None:
        for q in char_quads:
            d.polygon([tuple(p) for p in (np.asarray(q) * scale)], outline=(255, 230, 0))
    q = np.asarray(word_quad) * scale
    d.line([tuple(p) for p in q] + [tuple(q[0])], fill=(0, 255, 0), width=2)
    d.ellipse([q[0][0] - 3, q[0][1] - 3, q[0][0] + 3, q[0][1] + 3], fill=(255, 0, 0))  # the top-left corner


def _fit(arr: np.ndarray, h: int) -> tuple[Image.Image, float]:
    s = h / arr.shape[0]
    im = Image.fromarray(arr).resize((max(1, round(arr.shape[1] * s)), h), Image.BILINEAR)
    return im, s


def preview_row(record: TextRecord, cfg) -> Image.Image:
    from .transforms import make_model_sample

    scene, s = _fit(_overlay_masks(record.image, record.char_masks, 0.35), ROW_H)
    _draw_quads(scene, record.word_quad, record.char_quads, s)
    sample = make_model_sample(record, cfg)
    H, W = cfg.image_size
    up = ROW_H / H
    model_rgb = _to_rgb(sample["image"])
    clean, _ = _fit(model_rgb, ROW_H)
    n = len(record.text)
    masks = sample["char_masks"][:n] if sample["has_char_masks"] else None
    over, _ = _fit(_overlay_masks(model_rgb, masks), ROW_H)
    d = ImageDraw.Draw(over)
    q = sample["word_quad"] * up
    d.line([tuple(p) for p in q] + [tuple(q[0])], fill=(0, 255, 0), width=1)
    crop = to_uint8(sample["word_crop"])[..., 0]
    crop_im, _ = _fit(np.stack([crop] * 3, -1), ROW_H // 2)
    return _row([scene, clean, over, crop_im], f"{record.text!r}  [{record.source}]")


def _row(parts: list[Image.Image], caption: str) -> Image.Image:
    width = sum(p.width for p in parts) + 8 * len(parts) + 200
    row = Image.new("RGB", (width, ROW_H + 4), (30, 30, 30))
    x = 4
    for p in parts:
        row.paste(p, (x, 2))
        x += p.width + 8
    ImageDraw.Draw(row).text((x, ROW_H // 2 - 6), caption, fill=(255, 255, 255))
    return row


def _to_rgb(chw: np.ndarray) -> np.ndarray:
    """A model-ready (3, H, W) image in [-1, 1] as uint8 (H, W, 3)."""
    return to_uint8(chw)


def preview_pair_row(source: TextRecord, target: TextRecord, cfg) -> Image.Image:
    """An edit pair (``SynthGenerator.sample_pair``): both scenes with the box (green), then what the model
    is given (the source's window, masked in the old word's box) and what it must write there (the target's)."""
    from .transforms import make_edit_sample

    scenes = []
    for rec in (source, target):
        im, s = _fit(rec.image, ROW_H)
        _draw_quads(im, source.word_quad, None, s)
        scenes.append(im)
    sample = make_edit_sample(source, target, cfg)
    seen, _ = _fit(_to_rgb(sample["masked_image"]), ROW_H)
    want, _ = _fit(_to_rgb(sample["image"]), ROW_H)
    return _row(scenes + [seen, want], f"{source.text!r} -> {target.text!r}")


def preview_grid(records: list, cfg) -> Image.Image:
    """One row per record, or per edit pair when an item is a (source, target) tuple."""
    rows = [preview_pair_row(*r, cfg) if isinstance(r, tuple) else preview_row(r, cfg) for r in records]
    if not rows:
        return Image.new("RGB", (64, 16), (30, 30, 30))
    w = max(r.width for r in rows)
    grid = Image.new("RGB", (w, sum(r.height for r in rows)), (30, 30, 30))
    y = 0
    for r in rows:
        grid.paste(r, (0, y))
        y += r.height
    return grid
