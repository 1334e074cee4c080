"""Hand-built batches for the model tests: the data engine's batch layout without the data engine.

Each sample writes a word as vertical bars, one per character, inside a
horizontal region; the ground-truth character masks are those bars. The
layout is the collated ``make_model_sample`` dict of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import torch

from dreamtext.charset import encode_batch
from dreamtext.config import DreamTextConfig, load_config


def tiny_test_cfg(**overrides) -> DreamTextConfig:
    cfg = load_config("test")
    return cfg.override(overrides) if overrides else cfg


def make_batch(cfg: DreamTextConfig, texts: list[str], seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    B, L = len(texts), cfg.max_len
    H, W = cfg.image_size
    hv, wv = cfg.text.vis_size
    image = torch.rand(B, 3, H, W, generator=g) * 0.4 - 0.8  # dark background
    mask = torch.zeros(B, 1, H, W)
    char_masks = torch.zeros(B, L, H, W)
    word_crop = torch.full((B, 1, hv, wv), -1.0)
    y0, y1 = H // 4, H - H // 4
    for b, text in enumerate(texts):
        n = len(text)
        x0, x1 = W // 8, W - W // 8
        mask[b, 0, y0:y1, x0:x1] = 1
        step = (x1 - x0) / n
        for i, ch in enumerate(text):
            cx0 = int(x0 + i * step + 1)
            cx1 = max(cx0 + 1, int(x0 + (i + 1) * step - 1))
            char_masks[b, i, y0 + 1:y1 - 1, cx0:cx1] = 1
            level = (ord(ch) % 7) / 7.0
            image[b, :, y0 + 1:y1 - 1, cx0:cx1] = torch.tensor([1.0, level, 1 - level])[:, None, None]
            vx0, vx1 = int(i * wv / n) + 1, int((i + 1) * wv / n) - 1
            word_crop[b, 0, 2:hv - 2, vx0:vx1] = level * 2 - 1
    token_ids = torch.from_numpy(encode_batch(texts, L))
    batch = {
        "image": image,
        "mask": mask,
        "masked_image": image * (1 - mask),
        "char_masks": char_masks,
        "has_char_masks": torch.ones(B),
        "char_valid": (token_ids != 0).float(),
        "token_ids": token_ids,
        "word_crop": word_crop,
    }
    if cfg.glyph_prior:
        batch["glyph"] = char_masks.amax(dim=1, keepdim=True)
    return batch

