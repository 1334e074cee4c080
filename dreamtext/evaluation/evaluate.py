"""The evaluation protocol of UDiffText / DreamText (DESIGN §8), as one reproducible run.

For every record of a data source (``bench`` by default: the fixed synthetic
benchmark split of held-out words) the pipeline redraws the word's region:

- ``recon``: with the word it already holds (fidelity);
- ``edit``: with the fixed held-out word of the same length that
  :func:`dreamtext.data.words.edit_word_for` assigns to that record;
- ``style``: the paired benchmark (DESIGN §13, ``data.pairs.StylePairs``): each
  source scene is edited to its pair's new word and compared with the pair's
  ground-truth edit (``style_eval``: colour, background, sharpness, SSIM against
  the ground truth, per word-height bucket).

A model with the style reference sees the region's original pixels in ``edit``
and ``style`` (``style_ref``, default on); ``recon`` never shows it (the paper's
protocol masks the region, and the reference would hold the answer).

Sample ``i`` is sampled with seed ``seed + i``, so any single sample can be
reproduced alone. Per sample the OCR reads the rectified region of the output
(SeqAcc, NED) and of the untouched input (the OCR's own accuracy on that
sample: the ceiling of the model's score); SSIM / PSNR / MSE compare output
and input on the region's box and on the whole image; predicted character
masks are compared with the ground truth (mIoU) when the source has them and
the task is ``recon``; LPIPS and FID when their weights are present.

Outputs in ``out``: ``results.json`` (settings, model config, weights hash,
every aggregate metric), ``samples.csv`` (one row per sample) and
``report.md`` with ``best.png`` / ``worst.png`` picture grids.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
# The protocol's public names stay importable from here (dreamtext.evaluate is the documented entry point).
from .protocol import (TASKS, EvalSettings, _refiner_identity, _verifier_identity, check_device, evaluate_part,
                       load_pipeline, open_records, sample_strip, sampling_options, style_ref_used, target_text, weights_sha256)
from .style_eval import STYLE_METRIC_KEYS

__all__ = ["TASKS", "EvalSettings", "check_device", "evaluate", "evaluate_part", "load_pipeline", "open_records",
           "sample_strip", "sampling_options", "style_ref_used", "target_text", "weights_sha256", "aggregate", "METRIC_KEYS"]


def evaluate(settings: EvalSettings, out_dir: str | Path, pipeline=None, progress: bool = True) -> dict:
    """Run the protocol and write ``results.json``, ``samples.csv``, ``report.md`` and the grids into ``out_dir``.

    ``pipeline``: an already-loaded :class:`~dreamtext.pipeline.DreamTextPipeline`
    (else it is loaded from ``settings.ckpt``). With ``settings.ceiling_only``
    no model runs: only the OCR's accuracy on the untouched inputs is measured.
    With ``settings.workers`` = N > 1, N processes each load the model and take
    every N-th record (the numbers are identical: sample i always uses seed + i).
    Returns the results dict.
    """
    from . import metrics as M
    from .report import write_outputs

    settings.check()
    if settings.workers > 1 and pipeline is not None:
        raise ConfigError("evaluate(workers > 1) loads the model in each worker from settings.ckpt; "
                          "pass no in-memory pipeline")
    loaded = pipeline is None
    if not settings.ceiling_only:  # a bad sampling option is one error before any record is edited
        from ..model.checkpoint import model_config

        sampling_options(settings, pipeline.cfg if pipeline is not None else model_config(settings.ckpt))
    t_start = time.perf_counter()
    from .workers import evaluate_in_workers, progress_ticker

    if settings.workers > 1:
        part, cfg, weights_hash, ocr_name, notices = evaluate_in_workers(settings, progress)
    else:
        pipeline, cfg = load_pipeline(settings, pipeline)
        source, total = open_records(settings, cfg)
        part = evaluate_part(settings, pipeline, cfg, 0, 1, progress_ticker(settings, progress, total), (source, total))
        weights_hash = None if pipeline is None else weights_sha256(pipeline.model)
        ocr_name, notices = part["ocr"], part["notices"]
    for n in notices:
        print(f"note: {n}")
    rows, strips, skipped, fid_feats = part["rows"], part["strips"], part["skipped"], part["fid_feats"]
    if not rows:
        raise ConfigError(f"no sample of {settings.data!r} could be evaluated "
                          f"({len(skipped)} skipped; first reason: {skipped[0]['reason'] if skipped else 'source is empty'})")

    candidates = settings.candidates_for(cfg)
    aggregates = aggregate(rows)
    by_height = None
    if settings.task == "style":
        from .style_eval import by_height as group_by_height
        from .style_eval import medians

        aggregates |= medians(rows)
        by_height = group_by_height(rows, aggregate)
    if part["fid_on"]:
        if len(fid_feats[0]) >= 2:
            aggregates["fid"] = M.fid_from_features(np.stack(fid_feats[0]), np.stack(fid_feats[1]))
        else:
            notices.append("FID skipped: it needs at least two evaluated samples")
    results = {
        "task": "ceiling" if settings.ceiling_only else settings.task,
        "data": "style-pairs" if settings.task == "style" else settings.data,
        "n_samples": len(rows), "n_skipped": len(skipped), "skipped": skipped[:50],
        "seed": settings.seed,
        # the options every record was sampled with, resolved as the pipeline resolves them
        "sampling": None if settings.ceiling_only else {k: v for k, v in sampling_options(settings, cfg).to_dict().items()
                                                        if k != "style_ref"},
        "checkpoint": None if settings.ceiling_only else (settings.ckpt or ("shipped" if loaded else "in-memory pipeline")),
        "weights_sha256": None if settings.ceiling_only else weights_hash,
        # best of N: which judge picked the kept samples (None when each record had one sample)
        "verifier": None if settings.ceiling_only or candidates <= 1 else _verifier_identity(cfg),
        # the paste-back's detail refiner (None unless sample.upscale = "refiner")
        "refiner": (_refiner_identity(cfg) if not settings.ceiling_only
                    and sampling_options(settings, cfg).upscale == "refiner" else None),
        "glyph_prior": bool(cfg.glyph_prior),
        # DESIGN §13: whether the model has the style reference, and whether this run showed it the old word
        "style_ref": {"model": bool(cfg.style_ref), "used": style_ref_used(settings, cfg)},
        "recognition_loss": float(cfg.loss.ocr),  # the weight of L_ocr the model was trained with (0: off)
        "ocr": ocr_name,
        "workers": settings.workers,
        "perceptual_weights": {  # where LPIPS / FID weights came from (None: skipped, see notices)
            "lpips": (settings.lpips_dir or os.environ.get(M.LPIPS_ENV)) if part["lpips_on"] else None,
            "fid": (settings.fid_inception or os.environ.get(M.FID_ENV)) if part["fid_on"] else None},
        "metrics": aggregates,
        **({"metrics_by_height": by_height} if by_height is not None else {}),
        "notices": notices,
        "seconds_total": time.perf_counter() - t_start,
        "settings": dataclasses.asdict(settings),
        "config": cfg.to_dict(),
    }
    write_outputs(out_dir, results, rows, strips, settings.report_samples)
    return results


# Columns of a sample row that are numbers to average (NaN-aware; absent ones are left out).
METRIC_KEYS = ("seq_acc_ci", "seq_acc_cs", "ned", "ned_cs", "ocr_ceiling_seq_acc_ci", "ocr_ceiling_seq_acc_cs",
               "ocr_ceiling_ned", "ssim", "psnr", "mse", "ssim_region", "psnr_region", "mse_region",
               "mask_miou", "mask_miou_slices", "lpips", "seconds") + STYLE_METRIC_KEYS


def aggregate(rows: list[dict]) -> dict:
    """Mean of every metric column over the rows that have it (``mask_miou_n`` counts its samples)."""
    out = {}
    for key in METRIC_KEYS:
        vals = [r[key] for r in rows if key in r and r[key] is not None and not math.isnan(r[key])]
        if vals:
            out[key] = float(np.mean(vals))
    if "mask_miou" in out:
        out["mask_miou_n"] = sum(1 for r in rows if "mask_miou" in r)
    return out
