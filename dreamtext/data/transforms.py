"""Model-ready samples: a record (or an edit pair) → the dict the model trains and is evaluated on.

The window geometry (context window, warps, quads) is :mod:`dreamtext.data.geometry`'s.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..charset import encode
from ..errors import ConfigError, DatasetError
from ..pixels import to_model_range
from .geometry import apply_matrix, context_window, fill_quad, loosen_quad, rectify_word, warp
from .record import TextRecord

CHAR_MASK_THRESHOLD = 0.4  # area coverage above which a resized mask pixel stays in the character


def opencv_in_forked_worker(_worker_id: int | None = None) -> None:
    """Call first inside a forked worker (DataLoader ``worker_init_fn``, a multiprocessing pool job).

    0 = no OpenCV thread pool at all: the workers are the parallelism. With 1, OpenCV still goes through
    the pool the parent's cv2 calls created, whose threads do not exist after fork, and the worker hung
    forever (reproduced: the reader tests, then a 2-worker DataLoader).
    """
    cv2.setNumThreads(0)


def window_inputs(window: np.ndarray, region: np.ndarray, text: str, cfg, seen: np.ndarray | None = None,
                  reference: bool = False) -> dict:
    """The model's inputs for one window, shared by training samples and the editing pipeline.

    ``window`` uint8 (H, W, 3) the window at ``cfg.image_size``; ``region`` (4, 2) the quad the model fills, in
    window pixels; ``seen`` uint8 (H, W, 3) the scene the model is shown around it when it is not ``window``
    itself (an edit pair's source). Keys: ``image`` f32 (3,H,W) [-1,1] (the window), ``mask`` f32 (1,H,W),
    ``masked_image`` f32 (3,H,W) (the seen scene, 0 inside the region), ``token_ids`` int64 (L,), ``glyph``
    f32 (1,H,W) with ``cfg.glyph_prior`` (§12), ``style`` f32 (3,H,W) and ``has_style`` f32 () with
    ``cfg.style_ref`` (§13: the seen scene unmasked — the old word — with ``reference``, else zeros).
    """
    out_hw = tuple(cfg.image_size)
    mask = fill_quad(region, out_hw)[None]
    image = to_model_range(window)
    shown = image if seen is None else to_model_range(seen)
    out = {"image": image, "mask": mask, "masked_image": shown * (1.0 - mask), "token_ids": encode(text, cfg.max_len)}
    if getattr(cfg, "glyph_prior", False):
        from .glyph import render_glyph

        out["glyph"] = render_glyph(text, region, out_hw)[None].astype(np.float32)
    if getattr(cfg, "style_ref", False):
        out["style"] = shown if reference else np.zeros_like(shown)
        out["has_style"] = np.float32(bool(reference))
    return out


def make_model_sample(record: TextRecord, cfg, rng: np.random.Generator | None = None,
                      context: np.ndarray | None = None, reference: bool = False) -> dict:
    """One training / evaluation sample at ``cfg.image_size`` (see docs/ARCHITECTURE.md "data/").

    Keys: image f32 (3,H,W) [-1,1]; mask f32 (1,H,W); masked_image f32 (3,H,W); char_masks f32 (L,H,W);
    has_char_masks f32 (); char_valid f32 (L,); token_ids int64 (L,); word_crop f32 (1,hv,wv) [-1,1];
    word_quad f32 (4,2) in model pixels; glyph f32 (1,H,W) when cfg.glyph_prior; text str; key str.
    ``rng`` (training only) draws the loosened region of ``data.box_slack``; without it, or with a slack of 0,
    the transform is deterministic and the region is the word's quad (evaluation, the benchmark).
    ``context`` uint8 (H, W, 3), the size of ``record.image``: the scene the model sees around the region
    (``masked_image``) when it is not the record's own: an edit pair's source, whose word the model
    replaces by ``record``'s (render.SynthGenerator.sample_pair). ``image`` stays the record's: the target.
    With ``cfg.style_ref`` (DESIGN §13) the sample also holds ``style`` f32 (3,H,W) [-1,1], the scene the model
    sees (``context`` or the record's own) *unmasked* — the old word — and ``has_style`` f32 (): 1 with
    ``reference``; without it ``style`` is all zeros and ``has_style`` 0 (no reference: the paper's protocol).
    """
    H, W = cfg.image_size
    L = cfg.max_len
    matrix = context_window(record.word_quad, record.image.shape[:2], (H, W),
                            cfg.data.min_word_area_frac, cfg.data.context_scale)
    img = warp(record.image, matrix, (H, W), border="replicate")
    quad = apply_matrix(matrix, record.word_quad)
    # The region the model fills (mask and glyph prior): the word's quad, or in training with
    # data.box_slack > 0 a looser one around it, as a user's box or another word's box is at inference.
    slack = float(cfg.data.box_slack)
    if not 0 <= slack <= 1:
        raise ConfigError(f"data.box_slack must be in [0, 1] (a fraction of the word's width), got {slack}")
    region = loosen_quad(quad, rng, slack) if rng is not None and slack > 0 else quad
    seen = None
    if context is not None:
        if context.dtype != np.uint8 or context.shape != record.image.shape:
            raise DatasetError(f"record {record.key!r}: the context scene must be uint8 {record.image.shape}, like "
                               f"the record's image, got {context.dtype} {context.shape}")
        seen = warp(context, matrix, (H, W), border="replicate")
    inputs = window_inputs(img, region, record.text, cfg, seen=seen, reference=reference)
    token_ids = inputs["token_ids"]
    char_masks = np.zeros((L, H, W), np.float32)
    n = len(record.text)
    if record.char_masks is not None:
        # Masks are zero outside their union's bounding box: warp only that part (exactly the same result).
        union = record.char_masks.any(0)
        rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
        if len(rows):
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            part = np.ascontiguousarray(record.char_masks[:, y0:y1, x0:x1].transpose(1, 2, 0))
            shifted = matrix @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
            cov = warp(part, shifted, (H, W), border="constant").reshape(H, W, n).transpose(2, 0, 1)
        else:
            cov = np.zeros((n, H, W), np.float32)
        char_masks[:n] = cov >= CHAR_MASK_THRESHOLD
    hv, wv = cfg.text.vis_size
    crop = rectify_word(record.image, record.word_quad, (hv, wv))
    gray = to_model_range(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
    out = {
        **inputs,
        "char_masks": char_masks,
        "has_char_masks": np.float32(record.char_masks is not None),
        "char_valid": (token_ids > 0).astype(np.float32),
        "word_crop": gray[None],
        "word_quad": quad,
        "text": record.text,
        "key": record.key,
    }
    return out


def make_edit_sample(source: TextRecord, target: TextRecord, cfg, rng: np.random.Generator | None = None,
                     reference: bool = False) -> dict:
    """The model-ready sample of an edit pair (``SynthGenerator.sample_pair``): ``make_model_sample`` of the
    target word in the *source* word's box, the model's input cut from the source scene (and, with
    ``reference`` and ``cfg.style_ref``, the source word unmasked as the style reference)."""
    from dataclasses import replace

    return make_model_sample(replace(target, word_quad=source.word_quad), cfg, rng=rng, context=source.image,
                             reference=reference)
