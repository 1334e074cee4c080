"""Command-line options shared by the commands that edit photographs (``edit``, ``demo``, ``eval``)."""

from __future__ import annotations

import argparse

from ..config import BLEND_MODES, MASK_RULES, SAMPLERS, UPSCALE_MODES


def add_sampling_options(p: argparse.ArgumentParser, seed_help: str | None = None) -> None:
    """The model and sampling options of every command that edits (``edit``, ``demo``, ``eval``): one set of
    flags, each None by default so that ``SampleOptions.resolve`` takes the model's own setting."""
    p.add_argument("--ckpt", help="a trained run, checkpoint or pipeline directory (default: the shipped model)")
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's config, 10 for tiny)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale s (default: the model's config)")
    p.add_argument("--sampler", choices=SAMPLERS, help="the scheduler (default: ddim)")
    p.add_argument("--restarts", type=int, help="restart-sampling passes after the first (default: the model's "
                                                  "config); each re-runs the last restart_strength (0.6) of the "
                                                  "steps")
    p.add_argument("--blend", choices=BLEND_MODES,
                   help="paste-back: feather (the crop as generated), poisson (its colours shifted to meet the "
                        "photo's at the region's edge, its letters kept), inpaint (only its letters, in the old "
                        "letters' colour, over the photo's own background with the old letters inpainted away) or "
                        "recolor (the crop as generated, shifted to the old letters' colour and the photo's "
                        "background colour) or auto (recolor, unless the word verifier reads the new word worse "
                        "in it than feathered; feather where the edit does not show the model the old word); "
                        "default: the model's config")
    p.add_argument("--mask-rule", choices=MASK_RULES,
                   help="the character masks: attention (§3, blobs from the cross-attention) or strokes (those "
                        "narrowed to the generated letters' pixels); default: the model's config")
    p.add_argument("--upscale", choices=UPSCALE_MODES,
                   help="a region larger than the model's 32x128 window is enlarged to the photo's resolution: "
                        "bilinear (as the paper pastes back), unsharp (then an unsharp mask), matte (the letters' "
                        "edges steepened to the old word's width), transfer (the photo's own fine detail copied "
                        "where old and new agree, matched grain elsewhere) or refiner (the learned detail refiner, seeing the photo around "
                        "the word); "
                        "default: the model's config")
    p.add_argument("--candidates", type=int,
                   help="sample this many candidates per region and keep the one the word verifier reads best "
                        "(K times the sampling time; default: the model's config, 1)")
    p.add_argument("--no-style-ref", dest="style_ref", action="store_const", const=False, default=None,
                   help="a model with the style reference (version 7 on) sees each region's original pixels — the "
                        "old word's font, colour and light — as the reference of the new word; this flag masks "
                        "the region only, as the paper does (a region that held no text works either way)")
    p.add_argument("--seed", type=int, default=0,
                   help=seed_help or "random seed; the same seed gives the same result (default 0)")
