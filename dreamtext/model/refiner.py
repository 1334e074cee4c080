"""The detail refiner: the edited word as crisp as the photo around it (issue 28; docs/editing.md).

The model writes into a 32×128 window; a word 150 pixels tall in the photo is that window enlarged some
8×, so pasted back bilinearly its letters are as soft as a 16-pixel word blown up. The refiner is a small
fully-convolutional network that works on the paste-back's own box at the *photo's* resolution and gives the
enlarged crop its detail back:

    inputs (B, 8, h, w): the enlarged crop (3, [-1, 1]), the photo's own pixels there (3: the guide — the
    scene around the word at full resolution, and inside the word's region the old word when the edit uses
    the style reference, else zeros), the region (1: inside the quad) and log2(enlargement) / 3 (1: how soft
    the crop is)
    → a 2× pixel-unshuffle (B, 32, h/2, w/2) → a 3×3 convolution to ``channels`` → one pre-activated
    dilated residual block per ``dilations`` (receptive field ~90 photo pixels with the default) → a 3×3
    convolution to 12 → a 2× pixel-shuffle: a residual (B, 3, h, w) added to the enlarged crop.

The last convolution starts at zero, so an untrained refiner returns the bilinear enlargement exactly.
It is trained (``dreamtext train-refiner``, ``dreamtext.train.refiner_train``) on the generator's scenes at
word heights of 16–170 pixels: the ground truth's own model-window crop, enlarged as the paste-back does,
against the ground truth at full resolution (L1 + Sobel-gradient L1). It never sees the base model, so it
restores what the base model drew — sharper — and does not redraw it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


REFINER_FORMAT = "dreamtext.refiner"
SHIPPED_REFINER_DIR = Path(__file__).resolve().parent.parent / "assets" / "refiner"
IN_CHANNELS = 8  # enlarged crop 3, guide 3, region 1, log2 enlargement 1


class DetailRefiner(nn.Module):
    """(enlarged crop, guide, region, enlargement) → the crop with its detail back; ``cfg`` a ``RefinerConfig``."""

    def __init__(self, cfg):
        super().__init__()
        c = int(cfg.channels)
        self.cfg = cfg
        self.head = nn.Conv2d(4 * IN_CHANNELS, c, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(c, c, 3, padding=int(d), dilation=int(d)) for d in cfg.dilations)
        self.tail = nn.Conv2d(c, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # step 0: the identity on the enlarged crop
        nn.init.zeros_(self.tail.bias)

    def forward(self, back: torch.Tensor, guide: torch.Tensor, region: torch.Tensor,
                upscale: torch.Tensor) -> torch.Tensor:
        """``back``, ``guide`` (B, 3, h, w) in [-1, 1]; ``region`` (B, 1, h, w); ``upscale`` (B,) → (B, 3, h, w)."""
        b, _, h, w = back.shape
        plane = (torch.log2(upscale.clamp(min=1.0)) / 3.0).view(b, 1, 1, 1).expand(b, 1, h, w)
        x = torch.cat([back, guide, region, plane], 1)
        ph, pw = h % 2, w % 2  # the pixel-unshuffle needs even sides: replicate one row / column
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        x = self.head(F.pixel_unshuffle(x, 2))  # (B, c, h/2, w/2)
        for conv in self.blocks:
            x = x + conv(F.relu(x))
        residual = F.pixel_shuffle(self.tail(F.relu(x)), 2)[:, :, :h, :w]  # (B, 3, h, w)
        return back + residual


def refiner_inputs(back: np.ndarray, guide: np.ndarray, region: np.ndarray, has_ref: bool):
    """uint8 (h, w, 3) enlarged crop and photo patch, bool (h, w) region → the network's three image tensors
    (1, C, h, w); without the reference the guide's region is zero (the old word is not shown)."""
    from ..pixels import to_model_range

    g = to_model_range(guide[None])  # (1, 3, h, w) float32 in [-1, 1]
    r = region.astype(np.float32)[None, None]
    if not has_ref:
        g = g * (1.0 - r)
    return (torch.from_numpy(to_model_range(back[None])), torch.from_numpy(g), torch.from_numpy(r))


@torch.no_grad()
def refine_patch(refiner: DetailRefiner, back: np.ndarray, guide: np.ndarray, region: np.ndarray,
                 upscale: float, has_ref: bool) -> np.ndarray:
    """One paste-back box refined: uint8 (h, w, 3) in and out (:func:`refiner_inputs` for the arguments)."""
    from ..pixels import to_uint8

    device = next(refiner.parameters()).device
    b, g, r = (t.to(device) for t in refiner_inputs(back, guide, region, has_ref))
    out = refiner(b, g, r, torch.tensor([float(upscale)], device=device))
    return to_uint8(out.clamp(-1, 1))[0]


def refiner_state(ckpt: Path) -> dict:
    """The ``state.json`` of checkpoint directory ``ckpt``; :class:`CheckpointError` unless it is a refiner's."""
    from .checkpoint import kind_state

    return kind_state(ckpt, "refiner", "a detail refiner", "train-refiner")


def load_refiner(path: str | Path | None = None):
    """(refiner in eval mode on the CPU, its DreamTextConfig) from a ``train-refiner`` run or checkpoint
    directory; None: the one shipped in ``dreamtext/assets/refiner``."""
    from .checkpoint import load_small_model

    return load_small_model(path, SHIPPED_REFINER_DIR, lambda cfg: DetailRefiner(cfg.refiner), refiner_state,
                            f"no shipped detail refiner is present in {SHIPPED_REFINER_DIR}; train one with "
                            "`dreamtext train-refiner`, or set sample.upscale=bilinear")
