"""``dreamtext train-refiner``: train the detail refiner (dreamtext.model.refiner) on the generator's pairs.

Step ``s`` draws ``refiner.pairs_per_step`` same-style pairs from the *training* words (``StylePairs`` with
``split="train"`` and ``refiner.seed``: the paired benchmark's kind of scene, its three font-size ranges, so
word heights of 16–170 pixels and window enlargements of ~1–12×), turns each into a paste-back box
(``data.refiner_examples``) and cuts ``batch_size / pairs_per_step`` random ``crop``-pixel crops around its
word. A crop's guide shows the old word with probability ``refiner.ref_prob`` (the region masked otherwise,
as an edit without the style reference sees it).

Loss, over the word's quad and its feather band (the pixels a paste-back changes):
    L = mean |x̂ − x| + grad_weight · mean |∇x̂ − ∇x|   (∇: Sobel in x and y, per colour channel)
The gradient term is what makes edges steep: an L1 on pixels alone is content with a slightly soft edge.

Checkpoints (model, AdamW, step) every ``ckpt_every`` steps and on SIGTERM / Ctrl-C; ``resume`` continues with
the same data (pair ``i`` and the crops of step ``s`` are pure functions of the seed). At the end the first
``refiner.eval_pairs`` pairs of the paired benchmark's split (held out) are scored whole: the loss terms of the
bilinear enlargement and of the refined one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DreamTextConfig
from ..model.refiner import REFINER_FORMAT, DetailRefiner, refiner_state
from .loop import run_steps
from .small_model import export_weights, resume_run, save_run_checkpoint
from .utils import MetricsLogger, check_finite, lr_at, step_seed

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def sobel(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) → (B, 2C, h, w): Sobel derivatives in x and y of each channel (replicated borders)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].repeat(c, 1, 1, 1).to(x)  # (2C, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def refiner_loss(pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor, grad_weight: float) -> dict:
    """Weighted pixel and gradient L1 (module doc): ``pred``, ``truth`` (B, 3, h, w), ``weight`` (B, 1, h, w)."""
    denom = weight.sum().clamp(min=1.0)
    pixel = ((pred - truth).abs() * weight).sum() / (3 * denom)
    grad = ((sobel(pred) - sobel(truth)).abs() * weight).sum() / (6 * denom)
    return {"l1": pixel, "grad": grad, "total": pixel + grad_weight * grad}


def crops_to_batch(crops: list[dict], has_ref: np.ndarray) -> dict[str, torch.Tensor]:
    """Crops (``refiner_examples.random_crops``) → the network's tensors and the loss's; ``has_ref`` (B,) bool."""
    from ..pixels import to_model_range

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(to_model_range(np.stack([c[key] for c in crops])))  # (B, 3, s, s)

    def masks(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([c[key] for c in crops]).astype(np.float32))[:, None]  # (B, 1, s, s)

    region = masks("region")
    shown = torch.from_numpy(np.asarray(has_ref, np.float32)).view(-1, 1, 1, 1)
    return {"back": images("back"), "guide": images("guide") * (1 - region * (1 - shown)), "region": region,
            "upscale": torch.tensor([c["upscale"] for c in crops], dtype=torch.float32),
            "truth": images("truth"), "weight": masks("weight")}


def step_crops(pairs, cfg: DreamTextConfig, step: int) -> tuple[list[dict], np.ndarray]:
    """The crops of training step ``step`` and which show the old word (deterministic in the seed and step)."""
    from ..data.refiner_examples import random_crops, refiner_example

    r = cfg.refiner
    rng = np.random.default_rng(step_seed(r.seed, step))
    per_pair = max(1, r.batch_size // r.pairs_per_step)
    crops = []
    for j in range(r.pairs_per_step):
        source, target = pairs.pair(step * r.pairs_per_step + j)
        crops += random_crops(refiner_example(source, target, cfg, rng), per_pair, r.crop, rng)
    return crops, rng.random(len(crops)) < r.ref_prob


@torch.no_grad()
def evaluate_on_pairs(model: DetailRefiner, cfg: DreamTextConfig, limit: int) -> dict:
    """The loss terms of whole held-out boxes (the paired split's first ``limit`` pairs, the old word shown),
    bilinear enlargement against refined, over the pairs enlarged by more than ``sample.upscale_min``."""
    from ..data.pairs import StylePairs
    from ..data.refiner_examples import refiner_example

    pairs, rows = StylePairs(cfg), []
    model.eval()
    for i in range(min(limit, len(pairs))):
        ex = refiner_example(*pairs.pair(i), cfg, np.random.default_rng(i))
        if ex["upscale"] <= cfg.sample.upscale_min:
            continue
        b = crops_to_batch([ex], np.array([True]))
        base = refiner_loss(b["back"], b["truth"], b["weight"], 1.0)
        out = refiner_loss(model(b["back"], b["guide"], b["region"], b["upscale"]).clamp(-1, 1), b["truth"],
                           b["weight"], 1.0)
        rows.append([base["l1"].item(), out["l1"].item(), base["grad"].item(), out["grad"].item()])
    model.train()
    m = np.mean(rows, 0) if rows else np.full(4, np.nan)
    return {"eval_pairs": len(rows), "eval_l1_bilinear": float(m[0]), "eval_l1_refined": float(m[1]),
            "eval_grad_bilinear": float(m[2]), "eval_grad_refined": float(m[3])}


def train_refiner(cfg: DreamTextConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train ``DetailRefiner(cfg.refiner)`` for ``cfg.refiner.steps`` steps into ``out_dir``; returns a summary."""
    from ..data.pairs import StylePairs

    r = cfg.refiner
    out_dir = Path(out_dir)
    torch.manual_seed(r.seed)
    model = DetailRefiner(r)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=1e-4)
    step, resumed = resume_run(out_dir, model, opt, resume, refiner_state, "refiner")
    model.train()
    pairs = StylePairs(cfg, num=2**31 - 1, seed=r.seed, split="train")
    logger = MetricsLogger(out_dir, resume_step=step if resumed else None, tensorboard=False)
    start_step = step

    def step_fn(step: int) -> dict:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r.lr, r.warmup_steps, r.steps, "cosine")
        b = crops_to_batch(*step_crops(pairs, cfg, step))
        pred = model(b["back"], b["guide"], b["region"], b["upscale"])
        loss = refiner_loss(pred, b["truth"], b["weight"], r.grad_weight)
        base = refiner_loss(b["back"], b["truth"], b["weight"], r.grad_weight)  # the bilinear paste's own, for scale
        check_finite({"refiner": loss["total"]}, step + 1)
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss/total": loss["total"].item(), "loss/l1": loss["l1"].item(), "loss/grad": loss["grad"].item(),
                "bilinear/total": base["total"].item(), "lr": opt.param_groups[0]["lr"]}

    run = run_steps(step, r.steps, step_fn, log_every=r.log_every, on_log=logger.log,
                    save=lambda s: save_run_checkpoint(out_dir, cfg, model, opt, s, kind="refiner",
                                                       fmt=REFINER_FORMAT),
                    ckpt_every=r.ckpt_every, progress=progress, desc="train-refiner",
                    postfix=lambda v: {"loss": f"{v['loss/total']:.4f}", "bilinear": f"{v['bilinear/total']:.4f}"})
    step, stopped = run.step, (None if run.stopped == "finished" else run.stopped)
    summary = {"out": str(out_dir), "step": step, "stopped": stopped, "seconds": run.seconds,
               "steps_this_run": step - start_step, **run.last}
    if stopped is None:
        summary |= evaluate_on_pairs(model, cfg, r.eval_pairs)
        logger.log(step, {k: v for k, v in summary.items() if k.startswith("eval_")})
    logger.close()
    return summary


def export_refiner(run_or_ckpt: str | Path, dest: str | Path, *, force: bool = False) -> Path:
    """The refiner's weights and config (no optimiser state) into ``dest``, e.g. ``dreamtext/assets/refiner``."""
    return export_weights(run_or_ckpt, dest, kind="refiner", fmt=REFINER_FORMAT, state_of=refiner_state, force=force)
