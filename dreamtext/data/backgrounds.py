"""Scene backgrounds for the generator: natural photographs and procedural textures.

Photographs are the ones scikit-image ships inside its wheel (no download):
astronaut, coffee, chelsea, rocket, motorcycle, brick, grass, gravel, camera,
moon, coins, Hubble deep field, retina, immunohistochemistry. Pictures that
contain text of their own (``text``, ``page``, ``logo``) are left out, since
their letters would be unlabelled text. Procedural textures (fractal value
noise, stripes, bricks, wood grain, gradients) come from a fixed seed, so every
process builds the same bank. Both banks are built once per process and cached.
"""

from __future__ import annotations

import functools
import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

NATURAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "brick", "grass", "gravel",
                  "camera", "moon", "coins", "hubble_deep_field", "retina", "immunohistochemistry")
_MAX_SIDE = 320  # scenes are small: keep the photographs at most this large (faster crops)
NUM_TEXTURES = 32
TEXTURE_HW = (192, 384)


@functools.lru_cache(maxsize=None)
def natural_images() -> tuple[np.ndarray, ...]:
    """The bundled photographs as uint8 (h, w, 3), longest side ≤ 320."""
    import skimage.data

    out = []
    for name in NATURAL_IMAGES:
        try:
            im = np.asarray(getattr(skimage.data, name)())
        except Exception as e:  # noqa: BLE001 - a missing optional picture only narrows the variety
            log.info("skipping background %s: %s", name, e)
            continue
        if im.dtype != np.uint8:
            im = np.clip(im.astype(np.float64) / max(im.max(), 1) * 255, 0, 255).astype(np.uint8)
        if im.ndim == 2:
            im = np.stack([im] * 3, -1)
        im = np.ascontiguousarray(im[..., :3])
        scale = _MAX_SIDE / max(im.shape[:2])
        if scale < 1:
            im = cv2.resize(im, (round(im.shape[1] * scale), round(im.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        out.append(im)
    return tuple(out)


def _fbm(rng: np.random.Generator, hw: tuple[int, int], octaves: int = 5) -> np.ndarray:
    """Fractal value noise in [0, 1]: sum of upsampled random grids (float32 (h, w))."""
    h, w = hw
    acc = np.zeros(hw, np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1)
        grid = rng.random((cells + 1, 2 * cells + 1)).astype(np.float32)
        acc += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    acc /= total
    return (acc - acc.min()) / max(float(acc.max() - acc.min()), 1e-6)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _texture(rng: np.random.Generator, kind: int) -> np.ndarray:
    h, w = TEXTURE_HW
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    n = _fbm(rng, (h, w))
    if kind == 0:  # cloudy / plaster
        t = n
    elif kind == 1:  # stripes, wavy
        f = rng.uniform(0.03, 0.15)
        t = 0.5 + 0.5 * np.sin(f * (xx * np.cos(rng.uniform(0, np.pi)) + yy) + 4 * n)
    elif kind == 2:  # wood grain
        t = (np.sin(rng.uniform(0.05, 0.2) * yy + 10 * n) + 1) / 2
        t = 0.7 * t + 0.3 * n
    elif kind == 3:  # bricks / tiles
        bh, bw = rng.integers(14, 40), rng.integers(30, 90)
        row = (yy // bh).astype(int)
        off = (row % 2) * (bw // 2)
        mortar = ((yy % bh) < 2) | (((xx + off) % bw) < 2)
        t = np.where(mortar, 0.15, 0.6 + 0.4 * n)
    else:  # smooth gradient with grain
        a = rng.uniform(0, 2 * np.pi)
        g = (xx * np.cos(a) + yy * np.sin(a))
        g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
        t = 0.8 * g + 0.2 * n
    c1, c2 = _random_colour(rng), _random_colour(rng)
    img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def procedural_textures() -> tuple[np.ndarray, ...]:
    """A fixed bank of textures, uint8 (192, 384, 3), identical in every process."""
    rng = np.random.default_rng(20240517)
    return tuple(_texture(rng, i % 5) for i in range(NUM_TEXTURES))


def sample_background(rng: np.random.Generator, h: int, w: int, p_natural: float = 0.65) -> np.ndarray:
    """A uint8 (h, w, 3) background: a random crop of a photograph or texture, flipped and colour-jittered."""
    bank = natural_images() if rng.random() < p_natural else procedural_textures()
    if not bank:
        bank = procedural_textures()
    src = bank[int(rng.integers(len(bank)))]
    sh, sw = src.shape[:2]
    # Crop a window of the scene's aspect at a random zoom, then resize to (h, w).
    zoom = rng.uniform(0.6, 1.6)
    ch = int(min(sh, max(8, h * zoom), sw * h / w))
    cw = int(min(sw, max(8, ch * w / h)))
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = src[y0:y0 + ch, x0:x0 + cw]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)  # zoom < 2: little aliasing
    if rng.random() < 0.5:
        out = cv2.flip(out, 1)
    if rng.random() < 0.3:
        out = cv2.merge([out[:, :, int(c)] for c in rng.permutation(3)])  # recolour the scene
    gain = rng.uniform(0.75, 1.2)
    bias = rng.uniform(-20, 20)
    return cv2.addWeighted(out, gain, out, 0.0, bias)  # gain·x + bias, saturated to 0..255
