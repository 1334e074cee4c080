"""How well an edit keeps the old word's look: text colour, background, sharpness (DESIGN §13, the paired benchmark).

All three compare the edited photo with the ground-truth edit (the same scene drawn with the new word) inside
the edit region, at the scene's own resolution:

- ``text_color_de``: CIEDE2000 between the mean CIELAB colour of the ground truth's text pixels (its
  character masks) and the mean colour of the *output's* text pixels. The output's text pixels are found
  in the output itself, so a word drawn a few pixels off still gets its own colour measured: the region's
  pixels are split in two by k-means (k = 2, in CIELAB), and the text cluster is the one holding the larger
  share of ground-truth text pixels (a clean two-colour word splits exactly into ink and background).
- ``background_de``: the same for the region's non-text pixels: the ground truth's region outside its
  text (grown by ``guard`` pixels, where antialiasing mixes the two), against the output's region outside
  its own text cluster and the ground truth's text (grown the same).
- ``sharpness_ratio``: mean Sobel gradient magnitude (luma) of the output's region over the ground truth's:
  1 is as crisp, 0.5 half the edge energy (soft, upscaled).

Each returns NaN where it is undefined (an empty region or no text pixels), and the aggregation skips NaN.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ImageError


def _lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB → float64 CIELAB (D65)."""
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, np.uint8).reshape(-1, 1, 3)).reshape(np.shape(rgb)[:-1] + (3,))


def ciede2000(lab_a: np.ndarray, lab_b: np.ndarray) -> float:
    """CIEDE2000 between two CIELAB colours (3,)."""
    from skimage.color import deltaE_ciede2000

    return float(deltaE_ciede2000(np.asarray(lab_a, np.float64), np.asarray(lab_b, np.float64)))


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    if px <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def text_cluster(output: np.ndarray, region: np.ndarray, gt_text: np.ndarray, seed: int = 0) -> np.ndarray:
    """The output's text pixels inside ``region``: bool (H, W).

    ``output`` uint8 (H, W, 3); ``region``, ``gt_text`` bool (H, W). Two-cluster k-means on the region's CIELAB
    values (10 Lloyd iterations from the darkest and the lightest pixel); the cluster that holds the larger
    fraction of ``gt_text`` pixels is the text.
    """
    idx = np.flatnonzero(region.ravel())
    out = np.zeros(region.shape, bool)
    if len(idx) < 2:
        return out
    lab = _lab(output.reshape(-1, 3)[idx])
    centres = lab[[int(lab[:, 0].argmin()), int(lab[:, 0].argmax())]].copy()
    label = np.zeros(len(lab), np.int64)
    for _ in range(10):
        dist = ((lab[:, None, :] - centres[None]) ** 2).sum(-1)
        label = dist.argmin(1)
        for k in range(2):
            if (label == k).any():
                centres[k] = lab[label == k].mean(0)
    in_text = gt_text.ravel()[idx]
    share = [in_text[label == k].mean() if (label == k).any() else -1.0 for k in range(2)]
    text_k = int(np.argmax(share))
    out.ravel()[idx[label == text_k]] = True
    return out


def colour_errors(output: np.ndarray, truth: np.ndarray, region: np.ndarray, gt_text: np.ndarray,
                  guard: int = 1) -> dict[str, float]:
    """``text_color_de`` and ``background_de`` (module docstring) of ``output`` against ``truth``.

    ``output``, ``truth`` uint8 (H, W, 3) at one size; ``region`` bool (H, W) the edit region; ``gt_text``
    bool (H, W) the ground truth's text pixels (its character masks' union).
    """
    output, truth = np.asarray(output), np.asarray(truth)
    if output.shape != truth.shape or output.ndim != 3:
        raise ImageError(f"output and ground truth must be (H, W, 3) of one size, got {output.shape} and {truth.shape}")
    region = np.asarray(region, bool)
    gt_text = np.asarray(gt_text, bool) & region
    nan = {"text_color_de": math.nan, "background_de": math.nan}
    if not region.any():
        return nan
    out_text = text_cluster(output, region, gt_text)
    result = dict(nan)
    if gt_text.any() and out_text.any():
        result["text_color_de"] = ciede2000(_lab(truth[gt_text]).mean(0), _lab(output[out_text]).mean(0))
    gt_bg = region & ~_grow(gt_text, guard)
    out_bg = region & ~_grow(out_text | gt_text, guard)
    if gt_bg.any() and out_bg.any():
        result["background_de"] = ciede2000(_lab(truth[gt_bg]).mean(0), _lab(output[out_bg]).mean(0))
    return result


def sobel_energy(rgb: np.ndarray, region: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the luma (0–255 scale) over ``region`` (bool (H, W))."""
    import cv2

    gray = cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    return float(mag[region].mean()) if region.any() else math.nan


def sharpness_ratio(output: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """``sobel_energy(output) / sobel_energy(truth)`` over ``region`` (NaN where the truth has no edges)."""
    ref = sobel_energy(truth, region)
    return sobel_energy(output, region) / ref if ref > 0 else math.nan
