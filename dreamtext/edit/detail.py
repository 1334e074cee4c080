"""Detail at the photo's resolution: what the paste-back does to a crop enlarged from the model's window.

``sample.upscale`` picks how the enlarged crop (the window warped back to the region's box, bilinear) gets
its detail back before it is blended in; a region enlarged by at most ``sample.upscale_min`` is left as it is:

- ``"bilinear"``: nothing (the paper's paste-back);
- ``"unsharp"``: an unsharp mask whose radius follows the enlargement (σ = upscale / 2 photo pixels, amount 1):
  the cheap baseline, it steepens edges but cannot make a blurred stroke's outline crisp;
- ``"matte"``: the enlarged letters re-drawn with the photo's edge width. The crop is read as two colours,
  ``back ≈ bg + a · (fg − bg)`` (:func:`~dreamtext.edit.paste.two_colour_alpha`); an enlarged edge is a
  ramp of ``a`` some ``upscale`` pixels wide, so the ramp is steepened about its middle
  (``a' = clip(½ + g · (a − ½), 0, 1)``) and only the along-``fg − bg`` part of each pixel moves,
  by ``(a' − a) · (fg − bg)``. The letters' outlines (where ``a = ½``) stay where the model drew them,
  so legibility is the crop's own; texture across the colour axis stays too. The gain ``g`` matches
  the edges to the old word's (its mean ``|∇a|`` on its edges) where the edit shows the model the old
  word, and otherwise restores the window's own edge width (``g = upscale``), never sharper than a
  one-pixel step;
- ``"transfer"``: the photo's own fine detail (grain, texture, print noise: what is finer than the window
  could hold) copied into the crop wherever the old word and the new agree — background in both, away from
  the old letters' edges, or inside the letters of both — and matched grain elsewhere
  (:func:`transfer_detail`); the letters' shapes and edges are the crop's. Without the style reference
  (the paper's reconstruction protocol) nothing of the region is read: detail only around it;
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


EDGE_BAND = (0.25, 0.75)  # a pixel is on an edge of the two-colour alpha where a is inside this band
MAX_GAIN = 8.0  # no ramp is steepened more than this (a word enlarged 8× already looks like a blur)
STEP_SLOPE = 0.5  # what edge_slope measures on a one-pixel step (the 3×3 central difference): the steepest edge


def region_height(region: np.ndarray) -> float:
    """The short side of the rotated rectangle around ``region`` (bool (h, w)): a word's height in pixels."""
    import cv2

    ys, xs = np.nonzero(region)
    if len(xs) < 3:
        return float(max(region.shape))
    (_, _), (w, h), _ = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
    return float(max(1.0, min(w, h)))


def edge_slope(a: np.ndarray, inside: np.ndarray, min_pixels: int = 12) -> float | None:
    """Mean |∇a| (per pixel) over the pixels of ``inside`` (bool (h, w)) on an edge of ``a`` (float (h, w)).

    For an edge drawn as a linear ramp ``w`` pixels wide this is ``1 / w``. None where fewer than
    ``min_pixels`` pixels lie on an edge (no letters, or too few to trust).
    """
    import cv2

    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3) / 8.0  # Sobel's 3×3 kernel sums to 8× the difference
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    band = inside & (a > EDGE_BAND[0]) & (a < EDGE_BAND[1])
    if band.sum() < min_pixels:
        return None
    return float(np.sqrt(gx * gx + gy * gy)[band].mean())


def matte_sharpen(back: np.ndarray, patch: np.ndarray, region: np.ndarray, upscale: float,
                  has_ref: bool) -> np.ndarray:
    """``back`` (uint8 (h, w, 3)) with its letters' edges steepened to the photo's width (``"matte"``).

    ``patch``: the photo's box (the old word, where ``has_ref``); ``region`` bool (h, w): the word's quad;
    ``upscale``: how much the window was enlarged. Returns ``back`` itself where the crop holds no
    letters that stand out (nothing to steepen).
    """
    import cv2

    from .paste import two_colour_alpha

    height = region_height(region)
    a, bg, fg = two_colour_alpha(back, region, height)
    if fg is None:
        return back
    # only pixels whose 3×3 neighbourhood is inside the quad: a is cut to 0 at its border
    inside = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    slope = edge_slope(a, inside)
    if slope is None:
        return back
    target = min(STEP_SLOPE, slope * float(upscale))  # the window's own edge width, in photo pixels
    if has_ref:
        old, _, old_fg = two_colour_alpha(patch, region, height)
        old_slope = edge_slope(old, inside) if old_fg is not None else None
        if old_slope is not None:
            target = min(STEP_SLOPE, old_slope)
    gain = float(np.clip(target / slope, 1.0, MAX_GAIN))
    if gain <= 1.0:
        return back
    steep = np.clip(0.5 + gain * (a - 0.5), 0.0, 1.0) * (a > 0)  # a = 0 (outside, or no contrast) stays 0
    moved = (steep - a)[..., None] * (fg[None, None, :] - bg)  # (h, w, 3): only along fg − bg
    return np.clip(back.astype(np.float32) + moved + 0.5, 0, 255).astype(np.uint8)


GRAIN_SEED = 0  # the synthetic grain's noise: fixed, so an edit stays bit-identical for its seed
MIN_CALM_PIXELS = 50  # the photo's grain level is measured from at least this many calm pixels, else none


def high_pass(picture: np.ndarray, sigma: float) -> np.ndarray:
    """float32 (h, w, c): ``picture − G_σ * picture``, what is finer than a window enlarged 2σ× could hold."""
    import cv2

    p = picture.astype(np.float32)
    out = p - cv2.GaussianBlur(p, (0, 0), sigmaX=sigma)
    return out if out.ndim == 3 else out[..., None]


def transfer_detail(back: np.ndarray, patch: np.ndarray, region: np.ndarray, upscale: float,
                    has_ref: bool) -> np.ndarray:
    """``back`` (uint8 (h, w, 3)) given the photo's fine detail (``"transfer"``); its letters are not touched.

    The detail is ``fine = patch − G_σ * patch`` with ``σ = upscale / 2`` (grain, paper and print texture:
    what the enlarged window cannot hold) and ``r = ⌈4σ⌉`` (the blur kernel's radius: how far a high-passed
    edge rings). It is copied
    with weight ``w = (1 − a_new) · (1 − dilate_r(L)) + a_new · erode_r(L)`` — ``a_new`` the new letters'
    two-colour alpha, ``L`` the old letters (their alpha above ½) — so the old word's edges never print
    through the new one. Where it cannot be copied (``1 − w``: around the old letters, inside new letters
    over old background) matched grain stands in: Gaussian noise high-passed the same way, scaled per channel
    to the robust spread (1.4826 · MAD) of ``fine`` on the calm pixels (``w = 1``, no letter). Without
    ``has_ref`` the region's pixels are not the edit's to read (the paper's reconstruction protocol): detail
    is copied only beyond ``r`` of the region and the grain is measured there.
    """
    import cv2

    from .paste import two_colour_alpha

    sigma = max(0.5, 0.5 * float(upscale))
    r = int(np.ceil(4 * sigma))  # OpenCV's float Gaussian kernel radius: no pixel beyond r feels an edge
    disk = np.ones((2 * r + 1, 2 * r + 1), np.uint8)  # square: the separable blur's kernel is a square too
    if has_ref:
        height = region_height(region)
        a_new = two_colour_alpha(back, region, height)[0]
        old_letters = (two_colour_alpha(patch, region, height)[0] > 0.5).astype(np.uint8)  # binary: exact 0 zone
        weight = (1 - a_new) * (1 - cv2.dilate(old_letters, disk)) + a_new * cv2.erode(old_letters, disk)
        calm = (weight > 0.99) & (a_new < 0.01)
    else:
        weight = 1.0 - cv2.dilate(region.astype(np.uint8), disk).astype(np.float32)
        calm = weight > 0.99
    fine = high_pass(patch, sigma)  # (h, w, 3)
    added = weight[..., None] * fine
    if calm.sum() >= MIN_CALM_PIXELS:
        spread = 1.4826 * np.median(np.abs(fine[calm] - np.median(fine[calm], 0)), 0)  # (3,)
        noise = np.random.default_rng(GRAIN_SEED).standard_normal(fine.shape).astype(np.float32)
        noise = high_pass(noise, sigma)
        noise /= np.maximum(noise.reshape(-1, noise.shape[-1]).std(0), 1e-6)
        added += (1 - weight)[..., None] * noise * spread
    return np.clip(back.astype(np.float32) + added + 0.5, 0, 255).astype(np.uint8)


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
    if mode == "matte":
        return matte_sharpen(back, patch, region, upscale, has_ref)
    if mode == "transfer":
        return transfer_detail(back, patch, region, upscale, has_ref)
    if refiner is None:
        raise ConfigError("sample.upscale=refiner needs a refiner (sample.refiner, or the shipped one)")
    from ..model.refiner import refine_patch

    return refine_patch(refiner, back, patch, region, upscale, has_ref)
