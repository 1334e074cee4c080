"""Per-character masks predicted from the cross-attention maps (DESIGN §3).

    Ā = mean_l blur(resize(A_l))              over the layers l with min(h_l, w_l) ≥ s_min
    M_i = 1[ Ā_i > mean(Ā_i) + 2·std(Ā_i) ]   mean / std over the pixels of character slot i

Choices the paper leaves open, fixed here:

- "at least s_min pixels on a side" is read as the *shorter* side of the map;
- resizing is bilinear (align_corners=False) when enlarging and area-averaging when shrinking;
- the blur is a normalised 3×3 Gaussian with σ = 1 (weights exp(−(x²+y²)/2), summing to 1) with
  replicate padding, so a constant map stays constant up to the border;
- std is the population standard deviation (divide by the number of pixels);
- a map that is flat up to rounding (std ≤ 1e-5 · its maximum) predicts an empty mask.

``aggregate_maps`` keeps the autograd graph (the attention loss differentiates
through Ā); ``predict_char_masks`` returns a bool tensor with no gradient.
``refine_to_strokes`` is not the paper's: for the masks a user sees
(``sample.mask_rule = "strokes"``) it keeps the pixels of the generated
strokes, each given to the character whose §3 mask is nearest.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_kernel3(sigma: float = 1.0) -> torch.Tensor:
    """The normalised 3×3 Gaussian, (3, 3) float32."""
    ax = torch.tensor([-1.0, 0.0, 1.0])
    g = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def blur3(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Blur every channel of (B, C, H, W) with the 3×3 Gaussian, replicate padding.

    The normalised 2-D Gaussian is the outer product of the normalised 1-D one, so the blur is done as two
    passes of three shifted, weighted slices (much cheaper on the CPU than a depthwise convolution).
    """
    w = torch.exp(torch.tensor([-0.5 / sigma**2, 0.0, -0.5 / sigma**2]))
    a, b, _ = (w / w.sum()).tolist()
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    x = a * x[..., :, :-2] + b * x[..., :, 1:-1] + a * x[..., :, 2:]  # along W
    return a * x[..., :-2, :] + b * x[..., 1:-1, :] + a * x[..., 2:, :]  # along H


def resize_map(x: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) → (B, C, *out_hw): bilinear when enlarging, area when shrinking, identity when equal."""
    if tuple(x.shape[-2:]) == tuple(out_hw):
        return x
    if out_hw[0] <= x.shape[-2] and out_hw[1] <= x.shape[-1]:
        return F.interpolate(x, size=tuple(out_hw), mode="area")
    return F.interpolate(x, size=tuple(out_hw), mode="bilinear", align_corners=False)


def select_maps(maps: list[torch.Tensor], s_min: int) -> list[torch.Tensor]:
    """The maps whose shorter side is at least ``s_min``."""
    return [m for m in maps if min(m.shape[-2:]) >= s_min]


def aggregate_maps(maps: list[torch.Tensor], s_min: int, out_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Ā (B, L, H', W') float32 from the per-layer maps (B, L, h_l, w_l).

    ``out_hw`` None: the resolution of the largest selected map.
    """
    used = select_maps(maps, s_min)
    if not used:
        sizes = sorted({tuple(m.shape[-2:]) for m in maps})
        raise ValueError(f"no attention map has a side of at least s_min={s_min} (maps: {sizes})")
    if out_hw is None:
        out_hw = max((tuple(m.shape[-2:]) for m in used), key=lambda hw: hw[0] * hw[1])
    # mean_l blur(resize(A_l)) = blur(mean_l resize(A_l)): the blur is linear, so blur once.
    return blur3(torch.stack([resize_map(m.float(), out_hw) for m in used]).mean(dim=0))


@torch.no_grad()
def predict_char_masks(agg: torch.Tensor) -> torch.Tensor:
    """M (B, L, H', W') bool: Ā_i > mean(Ā_i) + 2·std(Ā_i), statistics over the pixels of each slot."""
    flat = agg.detach().float().flatten(2)  # (B, L, H'·W')
    mean = flat.mean(dim=-1, keepdim=True)
    std = flat.std(dim=-1, keepdim=True, unbiased=False)
    # A flat map (e.g. the uniform attention of a dropped condition) has std ≈ 0 up to rounding; without this
    # guard the rounding noise alone would cross mean + 2·std.
    flat_map = std <= 1e-5 * flat.abs().amax(dim=-1, keepdim=True)
    return ((flat > mean + 2 * std) & ~flat_map).reshape(agg.shape)


def resize_char_masks(masks: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Ground-truth character masks (B, L, H, W) in {0, 1} → bool (B, L, *out_hw).

    Shrinking is a max-pool over each output cell (a cell touched by the character belongs to it, so thin
    strokes survive); enlarging is nearest-neighbour.
    """
    masks = masks.float()
    if tuple(masks.shape[-2:]) == tuple(out_hw):
        return masks > 0.5
    if out_hw[0] <= masks.shape[-2] and out_hw[1] <= masks.shape[-1]:
        return F.adaptive_max_pool2d(masks, tuple(out_hw)) > 0.5
    return F.interpolate(masks, size=tuple(out_hw), mode="nearest") > 0.5


def mask_iou(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean IoU of bool masks (B, L, H, W) over the slots where ``valid`` (B, L) is true; NaN if none.

    A slot where both masks are empty counts as IoU 1.
    """
    inter = (pred & gt).flatten(2).sum(-1).float()
    union = (pred | gt).flatten(2).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))
    valid = valid.bool()
    if not bool(valid.any()):
        return torch.tensor(float("nan"))
    return iou[valid].mean()


def text_pixels(picture: np.ndarray, region: np.ndarray, background: np.ndarray | None = None,
                min_distance: float = 0.0) -> np.ndarray:
    """bool (H, W): the pixels of ``region`` (bool (H, W)) that belong to text in ``picture`` (uint8 (H, W, 3)).

    Text is what differs from the background: ``background`` is one colour (3,) or one per pixel
    (H, W, 3); by default the median of a 2-pixel ring just outside the region (the region itself when
    it fills the picture). A region pixel is text when its colour lies farther from the background than
    Otsu's threshold over all the region's distances, and than ``min_distance``. Otsu always splits, so
    without a ``min_distance`` a region without text still yields its least background-like pixels.
    """
    import cv2

    if not region.any():
        return np.zeros(region.shape, bool)
    if background is None:
        ring = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~region
        background = np.median(picture[ring if ring.any() else region].astype(np.float32), axis=0)
    distance = np.linalg.norm(picture.astype(np.float32) - background, axis=-1)  # (H, W)
    values = np.clip(distance[region], 0, 255).astype(np.uint8)[:, None]
    threshold, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return region & (distance > max(threshold, min_distance))


def refine_to_strokes(masks: np.ndarray, crop: np.ndarray, region: np.ndarray) -> np.ndarray:
    """§3 character masks made stroke-shaped: the region's text pixels, each given to the nearest mask.

    ``masks`` bool (n, h', w'): the §3 masks at any resolution; ``crop`` uint8 (H, W, 3): the generated
    crop they belong to; ``region`` bool (H, W): the word's quad in crop pixels → bool (n, H, W).
    Text pixels (:func:`text_pixels`) each go to the character whose (upscaled) §3 mask is nearest. The
    attention decides which character, the generated picture decides where its strokes are: §3's maps are
    as coarse as the UNet's attention layers, blobs around the letters. A character with an empty §3 mask
    stays empty.
    """
    import cv2

    n = masks.shape[0]
    H, W = region.shape
    out = np.zeros((n, H, W), bool)
    if n == 0 or not region.any() or not masks.any():
        return out
    strokes = text_pixels(crop, region)
    # Distance of every pixel to each character's upscaled mask; empty masks are infinitely far.
    far = np.float32(H + W)
    nearest = np.stack([cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3) if m.any()
                        else np.full((H, W), far, np.float32)
                        for m in (cv2.resize(m.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
                                  for m in masks)])
    owner = nearest.argmin(0)
    has_mask = masks.reshape(n, -1).any(1)
    for i in np.nonzero(has_mask)[0]:
        out[i] = strokes & (owner == i)
    return out
