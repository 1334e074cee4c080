"""Pictures a person looks at: per-character mask overlays and image grids.

Shared by ``dreamtext edit --masks``, ``dreamtext demo``, the trainer's sample
grids, the evaluation report and the web page, so the API is small and works
on plain NumPy arrays:

- :func:`char_colors` — one distinct colour per character slot;
- :func:`mask_overlay` — per-character masks ``bool (n, H, W)`` painted over an
  image, one colour per character (DESIGN §3: which pixels the model gave to
  which letter);
- :func:`regions_overlay` — the same for several regions at once, the rest dimmed;
- :func:`mask_legend` — a strip naming each character in its colour;
- :func:`image_grid` — rows of images (any sizes) with optional captions;
- :func:`before_after` — the input, the result and the mask overlay side by side.

Every function takes uint8 RGB ``(H, W, 3)`` arrays (or PIL images) and
returns a uint8 RGB array; none of them writes files (use
:func:`dreamtext.io_utils.atomic_save_image`).
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

BACKGROUND = (255, 255, 255)
CAPTION_COLOR = (20, 20, 20)


def _rgb(image) -> np.ndarray:
    """PIL image or array → uint8 RGB (H, W, 3) (grayscale and alpha handled)."""
    from .io_utils import read_image_rgb

    return read_image_rgb(np.asarray(image) if not isinstance(image, np.ndarray) else image)


def char_colors(n: int) -> np.ndarray:
    """``n`` well separated, saturated colours: uint8 (n, 3).

    Hues step by the golden ratio so neighbouring characters never share a
    colour and any prefix of the palette stays distinct.
    """
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        hue = (0.02 + i * 0.6180339887) % 1.0
        value = 1.0 if i % 2 == 0 else 0.8
        out[i] = np.round(np.array(colorsys.hsv_to_rgb(hue, 0.9, value)) * 255)
    return out


def mask_overlay(image, masks: np.ndarray, *, alpha: float = 0.55, colors: np.ndarray | None = None,
                 dim: float = 0.35) -> np.ndarray:
    """Paint per-character masks over ``image``: uint8 (H, W, 3).

    ``masks`` is bool/0-1 ``(n, H, W)`` at the image's size (character ``i`` in
    colour ``colors[i]``). Pixels claimed by several characters get the mean
    of their colours; pixels claimed by none are dimmed towards grey by
    ``dim`` so the coloured letters stand out.
    """
    img = _rgb(image).astype(np.float32)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != img.shape[:2]:
        raise ValueError(f"masks must be (n, {img.shape[0]}, {img.shape[1]}), got {masks.shape}")
    m = masks.astype(np.float32)
    colors = char_colors(len(m)) if colors is None else np.asarray(colors, np.uint8)
    count = m.sum(0)  # (H, W): characters claiming each pixel
    color_sum = np.einsum("nhw,nc->hwc", m, colors.astype(np.float32))
    claimed = count > 0
    mean_color = color_sum / np.maximum(count, 1)[..., None]
    grey = img.mean(-1, keepdims=True)
    out = img * (1 - dim) + grey * dim
    out[claimed] = img[claimed] * (1 - alpha) + mean_color[claimed] * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def text_strip(text: str, width: int, *, height: int = 18, color=CAPTION_COLOR) -> np.ndarray:
    """A white strip ``(height, width, 3)`` with ``text`` in it (clipped if too long)."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (max(1, width), height), BACKGROUND)
    ImageDraw.Draw(strip).text((3, 1), text, fill=tuple(int(c) for c in color), font=_font(max(8, height - 5)))
    return np.asarray(strip)


def mask_legend(texts: str | list[str], width: int, *, height: int = 18) -> np.ndarray:
    """A strip naming each character in its mask colour: uint8 (height, width, 3).

    ``texts`` is one string or one per region; each region's characters are
    coloured from the start of :func:`char_colors`, as :func:`before_after` paints them.
    """
    from PIL import Image, ImageDraw

    texts = [texts] if isinstance(texts, str) else list(texts)
    strip = Image.new("RGB", (max(1, width), height), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = _font(max(8, height - 4))
    x = 3
    for text in texts:
        for ch, c in zip(text, char_colors(len(text))):
            draw.text((x, 1), ch, fill=tuple(int(v) for v in c), font=font)
            x += int(draw.textlength(ch, font=font)) + 4
        x += 12
    return np.asarray(strip)


def image_grid(rows, *, captions=None, pad: int = 4, cell_height: int | None = None,
               caption_height: int = 18) -> np.ndarray:
    """Rows of images as one picture: uint8 RGB.

    ``rows`` is a list of lists of images (PIL or arrays, any sizes). With
    ``cell_height`` every image is resized to that height (aspect kept);
    otherwise images keep their size and each row is as tall as its tallest
    image. ``captions`` (same nesting as ``rows``, strings or None) are written
    under each image.
    """
    from PIL import Image

    rows = [[_rgb(im) for im in row] for row in rows]
    if cell_height is not None:
        rows = [[np.asarray(Image.fromarray(im).resize(
            (max(1, round(im.shape[1] * cell_height / im.shape[0])), cell_height), Image.BICUBIC))
            for im in row] for row in rows]
    has_caps = captions is not None and any(c for row in captions for c in row)
    cap_h = caption_height if has_caps else 0
    row_heights = [max((im.shape[0] for im in row), default=0) + cap_h for row in rows]
    row_widths = [sum(im.shape[1] for im in row) + pad * (len(row) + 1) for row in rows]
    width = max(row_widths, default=pad)
    height = sum(row_heights) + pad * (len(rows) + 1)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    y = pad
    for r, row in enumerate(rows):
        x = pad
        for c, im in enumerate(row):
            h, w = im.shape[:2]
            canvas[y:y + h, x:x + w] = im
            cap = captions[r][c] if has_caps and c < len(captions[r]) else None
            if cap:
                canvas[y + h:y + h + cap_h, x:x + w] = text_strip(cap, w, height=cap_h)
            x += w + pad
        y += row_heights[r] + pad
    return canvas


def before_after(before, after, masks: np.ndarray | None = None, *, texts: list[str] | None = None,
                 max_width: int = 512) -> np.ndarray:
    """Input | result [| result with character masks], each captioned: uint8 RGB.

    ``masks`` is the union over regions of the per-character masks, given as a
    list of ``(n_i, H, W)`` arrays (one per region, at the image's size) so each
    region's characters are coloured from the start of the palette; ``texts``
    are the regions' target strings, shown in the legend under the overlay.
    Wide images are scaled down to ``max_width`` per panel.
    """
    from PIL import Image

    before, after = _rgb(before), _rgb(after)
    panels = [before, after]
    captions = ["input", "result"]
    if masks is not None:
        panels.append(regions_overlay(after, masks))
        captions.append("character masks")
    scale = min(1.0, max_width / before.shape[1])
    if scale < 1.0:
        size = (max(1, round(before.shape[1] * scale)), max(1, round(before.shape[0] * scale)))
        panels = [np.asarray(Image.fromarray(p).resize(size, Image.LANCZOS)) for p in panels]
    grid = image_grid([panels], captions=[captions])
    if texts:
        legend = mask_legend(texts, grid.shape[1])
        grid = np.concatenate([grid, legend], axis=0)
    return grid


def regions_overlay(image, region_masks, *, alpha: float = 0.7, dim: float = 0.45) -> np.ndarray:
    """Several regions' masks over one image: uint8 (H, W, 3).

    ``region_masks`` is a list of bool ``(n_i, H, W)``, one per region; each
    region's characters take the palette from its start (so the legend of
    :func:`mask_legend` matches), and everything no character claims is dimmed.
    """
    region_masks = [np.asarray(m, bool) for m in region_masks if np.asarray(m).size]
    img = _rgb(image)
    if not region_masks:
        return mask_overlay(img, np.zeros((0, *img.shape[:2]), bool), alpha=alpha, dim=dim)
    colors = np.concatenate([char_colors(len(m)) for m in region_masks])
    return mask_overlay(img, np.concatenate(region_masks), alpha=alpha, colors=colors, dim=dim)


def context_box(quad: np.ndarray, image_hw: tuple[int, int], margin: float = 0.5) -> tuple[slice, slice]:
    """The quad's bounding box grown by ``margin`` × its height on every side (for pictures)."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    h, w = image_hw
    pad = margin * (q[:, 1].max() - q[:, 1].min())
    x0, x1 = int(max(0, np.floor(q[:, 0].min() - pad))), int(min(w, np.ceil(q[:, 0].max() + pad)))
    y0, y1 = int(max(0, np.floor(q[:, 1].min() - pad))), int(min(h, np.ceil(q[:, 1].max() + pad)))
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def reading_strip_png(panels: list, target: str, reading: str, reference_reading: str, reference: str = "input",
                      height: int = 64) -> bytes:
    """One evaluation report row as PNG bytes: the ``panels`` (uint8 images, each scaled to ``height``), then the
    target, what the OCR read in the output (✓/✗) and what it read in the ``reference`` picture."""
    import io

    from PIL import Image

    mark = "✓" if reading.lower() == target.lower() else "✗"
    lines = [f"target  '{target}'", f"output read '{reading}' {mark}", f"{reference} read  '{reference_reading}'"]
    text = np.concatenate([text_strip(line, 240, height=height // 3) for line in lines])
    buf = io.BytesIO()
    Image.fromarray(image_grid([list(panels) + [text]], cell_height=height)).save(buf, format="PNG")
    return buf.getvalue()
