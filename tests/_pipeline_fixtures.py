"""Shared helpers of the pipeline / edit-CLI tests: a saved random ``test``-preset pipeline, test photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dreamtext.config import load_config


def save_random_pipeline(directory: Path, seed: int = 0, **overrides) -> Path:
    """A randomly initialised ``test``-preset model written with ``save_pretrained``."""
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.model.network import DreamTextModel

    cfg = load_config("test")
    if overrides:
        cfg = cfg.override(overrides)
    torch.manual_seed(seed)
    DreamTextPipeline(DreamTextModel(cfg)).save_pretrained(directory)
    return directory


def photo(h: int = 72, w: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with mild noise: uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w * 200 + 30, y / h * 180 + 40, (x + y) / (w + h) * 120 + 60], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


