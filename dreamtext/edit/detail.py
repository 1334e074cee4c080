"""Detail at the photo's resolution: what the paste-back does to a crop enlarged from the model's window.

``sample.upscale`` picks how the enlarged crop (the window warped back to the region's box, bilinear) gets
its detail back before it is blended in; a region enlarged by at most ``sample.upscale_min`` is left as it is:

- ``"bilinear"``: nothing (the paper's paste-back);
- ``"unsharp"``: an unsharp mask whose radius follows the enlargement (σ = upscale / 2 photo pixels, amount 1):
  the cheap baseline, it steepens edges but cannot make a blurred stroke's outline crisp;
- ``"refiner"``: the learned :class:`~dreamtext.model.refiner.DetailRefiner`, which sees the photo around the
  word at full resolution (and the old word, when the edit uses the style reference).
"""

from __future__ import annotations

import numpy as np

from ..config import UPSCALE_MODES
from ..errors import ConfigError


def unsharp(back: np.ndarray, upscale: float, amount: float = 1.0) -> np.ndarray:
    """uint8 (h, w, 3) → the same with an unsharp mask of radius σ = upscale / 2 pixels."""
    import cv2

    b = back.astype(np.float32)
    soft = cv2.GaussianBlur(b, (0, 0), sigmaX=max(0.5, 0.5 * float(upscale)))
    return np.clip(b + amount * (b - soft) + 0.5, 0, 255).astype(np.uint8)


def restore_detail(mode: str, back: np.ndarray, patch: np.ndarray, region: np.ndarray, upscale: float,
                   has_ref: bool, refiner=None, upscale_min: float = 1.25) -> np.ndarray:
    """The enlarged crop ``back`` (uint8 (h, w, 3), the paste-back's box) with its detail restored by ``mode``.

    ``patch``: the photo's pixels of the same box; ``region`` bool (h, w): the word's quad there; ``upscale``:
    ``geometry.enlargement`` of the window; ``has_ref``: the edit shows the model the old word (then so is the
    refiner); ``refiner``: a loaded DetailRefiner (``mode == "refiner"``).
    """
    if mode not in UPSCALE_MODES:
        raise ConfigError(f"unknown sample.upscale {mode!r}; choose one of {', '.join(UPSCALE_MODES)}")
    if mode == "bilinear" or upscale <= upscale_min or not region.any():
        return back
    if mode == "unsharp":
        return unsharp(back, upscale)
    if refiner is None:
        raise ConfigError("sample.upscale=refiner needs a refiner (sample.refiner, or the shipped one)")
    from ..model.refiner import refine_patch

    return refine_patch(refiner, back, patch, region, upscale, has_ref)
