"""The paired edit benchmark's scoring (``dreamtext eval --task style``, DESIGN §13).

Each record is a pair (``data.pairs.StylePairs``): the pipeline edits the source scene — the whole editing
path: context window, sampling, paste-back — and the result is compared with the ground-truth edit at the
scene's resolution: OCR (SeqAcc, NED) against the new word; SSIM / PSNR / MSE of the region's box against
the ground truth (``ssim_gt`` ...); text-colour and background CIEDE2000 and the sharpness ratio
(``style_metrics``); the OCR's reading of the ground-truth edit (the ceiling). Every row carries its word's
height and bucket, and ``by_height`` aggregates per bucket.
"""

from __future__ import annotations

import math

import numpy as np

# Row columns of this task that are numbers to aggregate (beside the OCR columns every task has).
STYLE_METRIC_KEYS = ("ssim_gt", "psnr_gt", "mse_gt", "text_color_de", "background_de", "sharpness_ratio",
                     "word_height")
# Aggregated as medians too: colour errors are skewed by a few words drawn in the wrong place.
MEDIAN_KEYS = ("text_color_de", "background_de", "sharpness_ratio")


def score_pair(output: np.ndarray, truth, quad: np.ndarray) -> dict:
    """The image metrics of one edited scene ``output`` uint8 (H, W, 3) against the pair's ground truth
    ``truth`` (a TextRecord: the scene drawn with the new word, and its character masks), in region ``quad``."""
    from ..data.geometry import fill_quad
    from ..data.pairs import height_bucket
    from ..edit.paste import quad_height
    from . import metrics as M
    from .style_metrics import colour_errors, sharpness_ratio

    gt = truth.image
    region = fill_quad(quad, gt.shape[:2]) > 0
    gt_text = truth.char_masks.any(0) if truth.char_masks is not None else np.zeros(region.shape, bool)
    rows, cols = M.quad_box(quad, gt.shape[:2])
    out_r, gt_r = output[rows, cols], gt[rows, cols]
    height = float(quad_height(quad))
    return {
        "ssim_gt": M.ssim(out_r, gt_r), "psnr_gt": M.psnr(out_r, gt_r), "mse_gt": M.mse(out_r, gt_r),
        **colour_errors(output, gt, region, gt_text),
        "sharpness_ratio": sharpness_ratio(output, gt, region),
        "word_height": height, "height_bucket": height_bucket(height),
    }


def by_height(rows: list[dict], aggregate) -> dict:
    """``aggregate`` (evaluate.aggregate) of the rows of each height bucket, with medians and counts."""
    from ..data.pairs import HEIGHT_BUCKETS

    names = [f"{lo}-{hi}" for lo, hi in HEIGHT_BUCKETS]
    names += sorted({r["height_bucket"] for r in rows} - set(names))
    out = {}
    for name in names:
        part = [r for r in rows if r.get("height_bucket") == name]
        if part:
            out[name] = {"n": len(part), **aggregate(part), **medians(part)}
    return out


def medians(rows: list[dict]) -> dict:
    """``<key>_median`` of each MEDIAN_KEYS column over the rows that have a number there."""
    out = {}
    for key in MEDIAN_KEYS:
        vals = [r[key] for r in rows if isinstance(r.get(key), float) and not math.isnan(r[key])]
        if vals:
            out[f"{key}_median"] = float(np.median(vals))
    return out


def pair_strip(source: np.ndarray, output: np.ndarray, truth: np.ndarray, quad: np.ndarray,
               char_masks: np.ndarray | None, target: str, reading: str, gt_reading: str, height: int = 64) -> bytes:
    """One report row as PNG bytes: source | output | ground truth | character masks | what the OCR read."""
    from ..visualize import context_box, mask_overlay, reading_strip_png

    rows, cols = context_box(quad, source.shape[:2])
    masks_pic = mask_overlay(output, char_masks, dim=0.3) if char_masks is not None and char_masks.any() else output
    panels = [p[rows, cols] for p in (source, output, truth, masks_pic)]
    return reading_strip_png(panels, target, reading, gt_reading, "truth", height)
