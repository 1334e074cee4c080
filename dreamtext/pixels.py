"""The model's pixel range and back: the one place uint8 images become [-1, 1] floats and return.

Every path that hands pixels to a network (the training samples, the editing pipeline, the word verifier,
the encoder's pre-training crops) uses :func:`to_model_range`; every path that turns a network's output into a
picture (edits, sample grids, previews) uses :func:`to_uint8`, with one rounding rule (to nearest).
"""

from __future__ import annotations

import numpy as np


def to_model_range(rgb: np.ndarray, channels_first: bool = True) -> np.ndarray:
    """uint8 (or 0–255 float) pixels → float32 in [-1, 1]: ``x / 127.5 − 1``.

    ``rgb`` (..., H, W, C) becomes (..., C, H, W) when ``channels_first`` (a batch (B, H, W, 3) → (B, 3, H, W));
    a single-channel (H, W) image stays (H, W).
    """
    x = np.asarray(rgb).astype(np.float32) / 127.5 - 1.0
    if channels_first and x.ndim >= 3:
        x = np.moveaxis(x, -1, -3)
    return np.ascontiguousarray(x)


def to_uint8(x) -> np.ndarray:
    """A network's image in about [-1, 1] (NumPy array or torch tensor) → uint8 pixels, channels last.

    (B, C, H, W) → (B, H, W, C); (C, H, W) → (H, W, C); a single channel keeps its axis ((1, H, W) → (H, W, 1)).
    Values are clipped to [0, 255] and rounded to the nearest integer.
    """
    if hasattr(x, "detach"):  # a torch tensor, on any device and dtype
        x = x.detach().float().cpu().numpy()
    arr = np.clip((np.asarray(x, np.float32) + 1.0) * 127.5, 0, 255)
    arr = np.round(arr).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(arr, -3, -1)) if arr.ndim >= 3 else arr
