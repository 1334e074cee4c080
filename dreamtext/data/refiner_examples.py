"""Training examples of the detail refiner (docs/editing.md): a base output enlarged as the paste-back enlarges it,
beside the photo at full resolution and the ground truth there.

From a same-style pair (``pairs.StylePairs``: source scene with the old word, target with the new one) the
example is the paste-back's own box around the word (the quad grown by the feather band, as ``paste_back``
cuts it) at the scene's resolution:

- ``back``: what the paste-back would blend in if the base model wrote the target perfectly — the target's
  model-window crop (``context_window`` + ``warp``, as training and the pipeline cut windows), a little blurred
  and noised like a generated crop, enlarged back to the box (``geometry.window_to_box``);
- ``guide``: the source scene's box (the photo the user gave: the old word, and the scene around it);
- ``truth``: the target scene's box; ``region``: the word's quad; ``weight``: the quad and its feather band
  (the pixels a paste-back changes);
- ``upscale``: how much the window was enlarged (``geometry.enlargement``).
"""

from __future__ import annotations

import numpy as np

from .geometry import bbox, context_window, enlargement, fill_quad, quad_height, warp, window_to_box


def refiner_example(source, target, cfg, rng: np.random.Generator) -> dict:
    """One pair (TextRecords, the same scene with two words) → the example's arrays (see module doc)."""
    import cv2

    r = cfg.refiner
    quad = np.asarray(target.word_quad, np.float32)
    hw = target.image.shape[:2]
    matrix = context_window(quad, hw, tuple(cfg.image_size), cfg.data.min_word_area_frac, cfg.data.context_scale)
    feather_px = max(1.0, cfg.sample.feather * quad_height(quad))
    x0, y0, x1, y1 = bbox(quad, feather_px + 2, hw)
    low = warp(target.image, matrix, tuple(cfg.image_size)).astype(np.float32)  # (H, W, 3) the window
    if rng.random() < 0.5 and r.blur_max > 0:
        low = cv2.GaussianBlur(low, (0, 0), sigmaX=float(rng.uniform(0.05, r.blur_max)))
    low = low + rng.normal(0.0, float(rng.uniform(0.0, r.noise_max)), low.shape).astype(np.float32)
    low = np.clip(np.round(low), 0, 255).astype(np.uint8)
    region = fill_quad(quad - np.array([x0, y0], np.float32), (y1 - y0, x1 - x0)) > 0
    grow = int(np.ceil(feather_px))
    band = cv2.dilate(region.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    return {"back": window_to_box(low, matrix, (x0, y0, x1, y1)), "guide": source.image[y0:y1, x0:x1].copy(),
            "truth": target.image[y0:y1, x0:x1].copy(), "region": region, "weight": band,
            "upscale": enlargement(matrix)}


def random_crops(example: dict, n: int, size: int, rng: np.random.Generator) -> list[dict]:
    """``n`` square ``size``-pixel crops of an example, each centred on a random pixel of its region (a box
    smaller than ``size`` is padded: images by replication, ``region`` and ``weight`` with zeros)."""
    h, w = example["region"].shape
    ph, pw = max(0, size - h), max(0, size - w)
    padded = {k: np.pad(v, ((0, ph), (0, pw)) + ((0, 0),) * (v.ndim - 2),
                        mode="constant" if v.dtype == np.bool_ else "edge")
              for k, v in example.items() if k != "upscale"}
    ys, xs = np.nonzero(example["region"])
    if len(ys) == 0:
        ys, xs = np.array([h // 2]), np.array([w // 2])
    crops = []
    for _ in range(n):
        k = int(rng.integers(len(ys)))
        top = int(np.clip(ys[k] - size // 2, 0, padded["region"].shape[0] - size))
        left = int(np.clip(xs[k] - size // 2, 0, padded["region"].shape[1] - size))
        crops.append({key: v[top:top + size, left:left + size] for key, v in padded.items()}
                     | {"upscale": example["upscale"]})
    return crops
