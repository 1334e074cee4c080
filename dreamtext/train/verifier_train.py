"""``dreamtext train-verifier``: train the word verifier (dreamtext.verifier) on the data engine's crops.

Each batch is the diffusion trainer's own kind of sample (``make_model_sample``:
the context window of a synthetic scene with its word, the word's region mask,
its token ids) from the endless ``synth`` generator of ``verifier.seed``, so
the verifier sees what the diffusion model is asked to write, where it writes
it. Generated crops are softer than rendered ones: inside the region a crop is
blurred, down-sampled or given noise with ``verifier.degrade_prob`` each
(outside it stays as the photograph has it, as in a generated crop).

Loss: CTC (Graves et al. 2006) of the word's token ids. Checkpoints (model,
AdamW state, step) are written atomically every ``verifier.ckpt_every`` steps
and on SIGTERM / Ctrl-C; ``resume=True`` continues from the newest with the
data stream where it stood (sample ``i`` of the stream is a pure function of
the seed and ``i``; the augmentation of step ``s`` is seeded by ``s``).
At the end the verifier reads the ground-truth crops of the first
``verifier.eval_records`` records of the ``bench`` split (held out: another seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DreamTextConfig
from ..model.verifier import VERIFIER_FORMAT, WordVerifier, ctc_logp_per_char, greedy_readings, verifier_state
from .loop import run_steps
from .small_model import export_weights, resume_run, save_run_checkpoint
from .utils import MetricsLogger, check_finite, lr_at, step_batches, step_seed


def degrade(image: torch.Tensor, mask: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Blur / down-sample / add noise inside the region, each with ``prob`` per crop: (B, 3, H, W) → same."""
    b = image.shape[0]

    def pick() -> torch.Tensor:  # (B, 1, 1, 1) bool: which crops get this degradation
        return (torch.rand(b, generator=generator) < prob).view(b, 1, 1, 1)

    out = image
    sigma = float(torch.empty(()).uniform_(0.5, 1.5, generator=generator))
    x = torch.arange(-2, 3, dtype=torch.float32)
    k1 = torch.exp(-x**2 / (2 * sigma**2))
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5)  # a 5×5 Gaussian per colour channel
    blurred = F.conv2d(F.pad(out, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
    out = torch.where(pick(), blurred, out)
    h, w = out.shape[-2:]
    small = F.interpolate(out, size=(h // 2, w // 2), mode="area")
    out = torch.where(pick(), F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False), out)
    noise_sd = torch.rand(b, 1, 1, 1, generator=generator) * 0.12
    out = torch.where(pick(), out + noise_sd * torch.randn(out.shape, generator=generator), out)
    return (mask * out + (1 - mask) * image).clamp(-1, 1)  # the region degraded, the context as it was


@torch.no_grad()
def evaluate_on_bench(model: WordVerifier, cfg: DreamTextConfig, limit: int) -> dict:
    """Greedy readings of the ``bench`` split's ground-truth crops: exact-match accuracy (case-sensitive and not)."""
    from ..data.sources import bench_source
    from ..data.transforms import make_model_sample

    src = bench_source(cfg)
    model.eval()
    hits = hits_ci = n = 0
    logps = []
    records = [src.generator.sample(i) for i in range(min(limit, len(src)))]
    for first in range(0, len(records), 64):
        samples = [make_model_sample(r, cfg, rng=np.random.default_rng(0)) for r in records[first:first + 64]]
        image = torch.from_numpy(np.stack([s["image"] for s in samples]))
        mask = torch.from_numpy(np.stack([s["mask"] for s in samples]))
        ids = torch.from_numpy(np.stack([s["token_ids"] for s in samples])).long()
        log_probs = model(image, mask)
        logps += ctc_logp_per_char(log_probs, ids).tolist()
        for rec, reading in zip(records[first:first + 64], greedy_readings(log_probs)):
            hits += reading == rec.text
            hits_ci += reading.lower() == rec.text.lower()
            n += 1
    model.train()
    return {"bench_records": n, "bench_acc": hits / max(n, 1), "bench_acc_ci": hits_ci / max(n, 1),
            "bench_logp_per_char": float(np.mean(logps)) if logps else 0.0}


def train_verifier(cfg: DreamTextConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train ``WordVerifier(cfg.verifier)`` for ``cfg.verifier.steps`` steps into ``out_dir``; returns a summary."""
    v = cfg.verifier
    out_dir = Path(out_dir)
    model, step = WordVerifier(v), 0
    opt = torch.optim.AdamW(model.parameters(), lr=v.lr, weight_decay=1e-4)
    step, resumed = resume_run(out_dir, model, opt, resume, verifier_state, "verifier")
    model.train()
    data_cfg = cfg.override({"train.batch_size": v.batch_size})
    batches = step_batches(data_cfg, 0, 1, v.seed, start_micro=step)
    logger = MetricsLogger(out_dir, resume_step=step if resumed else None, tensorboard=False)
    start_step, recent = step, []

    def step_fn(step: int) -> dict:
        nonlocal recent
        for g in opt.param_groups:
            g["lr"] = lr_at(step, v.lr, v.warmup_steps, v.steps, "cosine")
        b = next(batches)
        gen = torch.Generator().manual_seed(step_seed(v.seed, step))
        image = degrade(b["image"], b["mask"], v.degrade_prob, gen)
        log_probs = model(image, b["mask"])
        ids = b["token_ids"].long()
        loss = -ctc_logp_per_char(log_probs, ids).mean()  # CTC NLL per character
        check_finite({"ctc": loss}, step + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        texts = [t.lower() for t in _texts(ids)]
        acc = float(np.mean([r.lower() == t for r, t in zip(greedy_readings(log_probs.detach()), texts)]))
        recent = (recent + [acc])[-50:]
        return {"loss/ctc": loss.item(), "acc_ci": float(np.mean(recent)), "lr": opt.param_groups[0]["lr"]}

    run = run_steps(step, v.steps, step_fn, log_every=v.log_every, on_log=logger.log,
                    save=lambda s: save_run_checkpoint(out_dir, cfg, model, opt, s, kind="verifier",
                                                       fmt=VERIFIER_FORMAT), ckpt_every=v.ckpt_every,
                    progress=progress, desc="train-verifier",
                    postfix=lambda r: {"ctc": f"{r['loss/ctc']:.3f}", "acc": f"{r['acc_ci']:.2f}"})
    step, stopped = run.step, (None if run.stopped == "finished" else run.stopped)
    summary = {"out": str(out_dir), "step": step, "stopped": stopped, "train_acc_ci": float(np.mean(recent or [0])),
               "seconds": run.seconds, "steps_this_run": step - start_step}
    if stopped is None:
        summary |= evaluate_on_bench(model, cfg, v.eval_records)
        logger.log(step, {k: summary[k] for k in ("bench_acc", "bench_acc_ci", "bench_logp_per_char")})
    logger.close()
    return summary


def _texts(ids: torch.Tensor) -> list[str]:
    from ..charset import decode

    return [decode(row) for row in ids.numpy()]  # decode skips the padding


def export_verifier(run_or_ckpt: str | Path, dest: str | Path, *, force: bool = False) -> Path:
    """Copy a verifier's weights and config (no optimiser state) into ``dest``, e.g. ``dreamtext/assets/verifier``.

    ``dest`` is checked as ``checkpoint.export_mode`` says (a user's folder is never replaced).
    """
    return export_weights(run_or_ckpt, dest, kind="verifier", fmt=VERIFIER_FORMAT, state_of=verifier_state,
                          force=force)
