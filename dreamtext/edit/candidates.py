"""Best of N and the sampling batch's noise: which generator draws each region's noise, and which candidate wins.

Kept apart from the pipeline so that the seeding rule (candidate 0 = the one-sample result) has one owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CandidatePicks:
    scores: np.ndarray  # (K, n) verifier log p(text | crop) per character
    chosen: np.ndarray  # (n,) index of the kept candidate per region
    readings: list[str]  # the verifier's reading of each kept crop


def noise_generators(seeds: list[int], quads: list[list], candidates: int = 1):
    """The noise generators of one sampling batch: one per job, seeded ``seeds[i]``, drawing for its regions.

    One job of one sample draws all its regions from its generator at once (what ``edit`` always did); several
    jobs, or K > 1 candidates, get a list with one generator per batch item: candidate 0 of each region from its
    job's generator, candidate c from one seeded ``candidate_seed(seed, c)``.
    """
    import torch

    generators = [torch.Generator().manual_seed(s) for s in seeds]
    per_region = [g for g, q in zip(generators, quads) for _ in q]
    if candidates <= 1:
        return generators[0] if len(generators) == 1 else per_region
    return per_region + [g for c in range(1, candidates)
                         for g, q in zip([torch.Generator().manual_seed(candidate_seed(s, c)) for s in seeds], quads)
                         for _ in q]


def window_generators(seeds: list[int], quads: list[list], candidates: int = 1) -> list:
    """One generator per window of a batch too large for one UNet call (``MAX_SAMPLE_BATCH``), seeded by (job
    seed, candidate, window): a window's noise then depends on nothing batched with it, so any grouping of the
    batch gives the same result. Order: candidate-major, then job, then window (the batch's own order)."""
    import torch

    return [torch.Generator().manual_seed(window_seed(s, c, j))
            for c in range(candidates) for s, q in zip(seeds, quads) for j in range(len(q))]


def window_seed(seed: int, candidate: int, window: int) -> int:
    """The noise seed of window ``window`` (a region's chunk, in job order) of candidate ``candidate``."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, candidate, window, 0x3B1D]).generate_state(
        2, np.uint32)
    return (int(state[0]) & 0x7FFFFFFF) << 32 | int(state[1])


def candidate_seed(seed: int, candidate: int) -> int:
    """The noise seed of candidate ``candidate`` ≥ 1 of a job seeded ``seed`` (candidate 0 uses ``seed`` itself)."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, candidate, 0xCA4D1]).generate_state(2, np.uint32)
    return (int(state[0]) & 0x7FFFFFFF) << 32 | int(state[1])


def pick_candidates(verifier, max_len: int, crops: np.ndarray, masks: np.ndarray, texts: list[str], n_items: int):
    """The verifier's scores of K·n crops → the best candidate of each of the n regions."""
    from ..model.verifier import score_crops

    scored = score_crops(verifier, crops, masks, texts, max_len)
    scores = scored.logp_per_char.reshape(-1, n_items)  # (K, n)
    chosen = scores.argmax(axis=0)  # the first of equal scores: candidate 0 wins a tie
    readings = [scored.readings[c * n_items + j] for j, c in enumerate(chosen)]
    return CandidatePicks(scores=scores, chosen=chosen, readings=readings)


def blend_scores(verifier, max_len: int, windows: np.ndarray, mask: np.ndarray, text: str) -> np.ndarray:
    """The verifier's log p(``text`` | crop) per character of each paste, float64 (n,).

    ``windows`` uint8 (n, H, W, 3): the photo pasted each way (``blend="auto"``: feathered, recoloured), each
    seen through the region's model window; ``mask`` (H, W) the region there.
    """
    from ..model.verifier import score_crops

    n = len(windows)
    return np.asarray(score_crops(verifier, windows, np.stack([mask] * n), [text] * n, max_len).logp_per_char,
                      np.float64)


def keeps_recolor(scores, margin: float) -> bool:
    """``blend="auto"``'s rule on the :func:`blend_scores` (feathered, recoloured) of a region: keep the recoloured
    paste unless its log p(text | crop) per character is more than ``margin`` below the feathered paste's (a tie
    keeps the old word's colour)."""
    return bool(scores[1] >= scores[0] - margin)


def window_views(pastes, matrix: np.ndarray, quad: np.ndarray, image_size) -> tuple[np.ndarray, np.ndarray]:
    """Photos pasted different ways, seen through the region's model window → (uint8 (n, H, W, 3), the region
    there bool (H, W)): what :func:`blend_scores` reads."""
    from ..data.geometry import apply_matrix, fill_quad, warp

    hw = tuple(image_size)
    windows = np.stack([np.clip(warp(p, matrix, hw) + 0.5, 0, 255).astype(np.uint8) for p in pastes])
    return windows, fill_quad(apply_matrix(matrix, quad), hw) > 0


def paste_auto(verifier, cfg, image: np.ndarray, piece, text: str, feather_px: float, clip=None, detail=None):
    """``blend="auto"`` for one pasted chunk → (the photo, "recolor" or "feather", the :func:`blend_scores`).

    ``piece``: the chunk's ``RegionResult`` (crop, matrix, quad). Both pastes share one enlargement and detail
    step (``paste_back_blends``); the verifier reads each through the region's model window.
    """
    from .paste import paste_back_blends

    both = paste_back_blends(image, piece.crop, piece.matrix, piece.quad, feather_px, ("feather", "recolor"),
                             clip=clip, detail=detail)
    scores = blend_scores(verifier, cfg.max_len, *window_views(both, piece.matrix, piece.quad, cfg.image_size), text)
    if keeps_recolor(scores, cfg.sample.blend_margin):
        return both[1], "recolor", scores
    return both[0], "feather", scores


class StepBar:
    """A tqdm bar over sampling steps, driven by the sampler's progress callback.

    The bar opens on the first step with the total the sampler reports (every pass, restarts included).
    """

    def __init__(self):
        self.bar = None

    def __call__(self, step: int, total: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="sampling", unit="step", leave=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
