"""The diffusion trainer (DESIGN §4, §5, §9): one code path from a 2-core CPU to many GPUs.

``train(cfg)`` runs on HF accelerate, so ``dreamtext train ...``,
``accelerate launch dreamtext train ...`` and ``torchrun --nproc_per_node N``
run the same loop (DDP over gloo on CPU, NCCL on GPUs). Every optimiser step:

1. for each of ``grad_accum`` micro-batches: the batch of this process (a
   pure function of the micro-batch counter, ``train_utils.step_batches``),
   a generator seeded by ``(seed, step, rank, micro)`` for noise, timesteps
   and the condition dropout, then ``TrainingObjective.forward`` (losses.py:
   noise → ψ → UNet with attention capture → §3 masks → L_mask + α·L_attn +
   β·(L_align + L_id), with the step number for balanced supervision), under
   bf16 autocast where the hardware has it;
2. gradient clipping, the optimiser step at the warm-up/cosine LR, the EMA update;
3. metrics (each loss term, mIoU, lr, samples/s) to ``metrics.jsonl`` (and
   TensorBoard when installed), a tqdm bar with rate and time left;
4. every ``ckpt_every`` steps and at exit (also on Ctrl-C and SIGTERM) a
   checkpoint ``checkpoints/step_<n>/`` (checkpoint.save_checkpoint: model,
   EMA and optimiser as safetensors, config.json, state.json with step, RNG
   states and data position), older ones pruned to ``keep_ckpts``;
5. every ``sample_every`` steps a PNG grid of EMA samples with their predicted
   character masks overlaid (``samples/step_<n>.png``).

A NaN/inf loss stops the run with :class:`NonFiniteLossError` before the bad
update is applied; no checkpoint is written after it, so the last good one stays.
Because data and randomness are functions of the step, a run killed (even by
SIGKILL) and resumed with ``resume=True`` ends with the weights of an
uninterrupted run (tests/test_train_resume.py).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import DreamTextConfig
from ..errors import CheckpointError, ConfigError
from ..io_utils import atomic_save_image
from ..model.checkpoint import (checkpoint_step, latest_checkpoint, read_config, read_json, read_tensors,
                                save_checkpoint, weights_sha256)
from .ema import EMA
from .loop import run_steps
from .run_setup import (_check_resumable, _init_weights, compile_unet, loss_values, make_accelerator,
                        remove_stale_temp_dirs)
from .utils import (MetricsLogger, check_finite, flatten_optimizer_state, get_rng_state, lr_at,
                    prune_checkpoints, set_rng_state, step_batches, step_seed, unflatten_optimizer_state)

# Config sections a resumed run may change (everything else defines the model, its data or its objective).
LOSS_TERMS = ("total", "mask", "attn", "align", "id", "ocr")  # the NaN guard's terms (miou may be NaN legitimately)
SAMPLE_SEED_OFFSET = 7919  # the sample grid shows held-out samples of another seed


class Trainer:
    """State of one training run; ``train()`` is the public entry point."""

    def __init__(self, cfg: DreamTextConfig, resume: bool = False):
        from ..model.network import DreamTextModel
        from .losses import TrainingObjective, check_loss_config

        check_loss_config(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.train.out_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.acc = make_accelerator(cfg)
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        ckpt = latest_checkpoint(self.run_dir) if self.run_dir.exists() else None
        if ckpt is not None and not resume:
            raise CheckpointError(f"{str(self.run_dir)!r} already holds checkpoints (latest {ckpt.name}); "
                                  "pass --resume to continue it, or set train.out_dir to a new directory")
        if ckpt is not None:
            _check_resumable(read_config(ckpt), cfg, ckpt)

        torch.manual_seed(cfg.train.seed)  # identical initial weights on every process
        self.model = DreamTextModel(cfg).to(self.acc.device)
        if ckpt is None and cfg.train.init_from:
            _init_weights(self.model, cfg.train.init_from)
        if ckpt is None and cfg.train.encoder_ckpt:
            from .pretrain import load_encoder_weights

            load_encoder_weights(self.model.text_encoder, cfg.train.encoder_ckpt)
        self.params = self.model.trainable_parameters()
        scale = float(cfg.train.conv_in_lr_scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ConfigError(f"train.conv_in_lr_scale must be a number > 0, got {scale}")
        conv_in = {id(p) for p in self.model.unet.conv_in.parameters()}
        groups = [{"params": [p for p in self.params if id(p) not in conv_in], "lr_scale": 1.0},
                  {"params": [p for p in self.params if id(p) in conv_in], "lr_scale": scale}]
        if scale == 1.0:  # one group, as checkpoints written before the switch hold (they resume unchanged)
            groups = [{"params": self.params, "lr_scale": 1.0}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.train.lr,
                                           weight_decay=cfg.train.weight_decay)
        self.ema = EMA(self.model, cfg.train.ema_decay)
        self.step = 0
        self.resumed_from = None
        if ckpt is not None:
            self._load(ckpt)
        if cfg.train.compile:
            compile_unet(self.model.unet, cfg.train.compile_backend)
        self.objective = TrainingObjective(self.model, cfg, full=True)
        self.objective, self.optimizer = self.acc.prepare(self.objective, self.optimizer)
        self.last_saved_step = self.step if ckpt is not None else -1

    # ----- checkpoints
    def _load(self, ckpt: Path) -> None:
        from ..model.checkpoint import load_state_into

        load_state_into(self.model, read_tensors(ckpt / "model.safetensors"), ckpt / "model.safetensors")
        state = read_json(ckpt / "state.json")
        for key, kind in (("step", int), ("ema_updates", int), ("optimizer", dict), ("rng", dict)):
            value = state.get(key) if isinstance(state, dict) else None
            if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
                raise CheckpointError(f"{str(ckpt / 'state.json')!r}: {key!r} must be "
                                      f"{'a whole number ≥ 0' if kind is int else 'an object'}, got {value!r}; "
                                      "the checkpoint cannot be resumed")
        self.ema.load_shadow({k: v.to(self.acc.device) for k, v in read_tensors(ckpt / "ema.safetensors").items()},
                             state["ema_updates"])
        opt_state = unflatten_optimizer_state(read_tensors(ckpt / "optimizer.safetensors"), state["optimizer"])
        self.optimizer.load_state_dict(opt_state)
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.resumed_from = ckpt

    def save(self) -> Path | None:
        """Checkpoint the current step (main process writes; everyone waits), then prune old ones."""
        path = self.ckpt_root / f"step_{self.step:08d}"
        if self.acc.is_main_process:
            opt_tensors, opt_meta = flatten_optimizer_state(self.optimizer.state_dict())
            state = {
                "step": self.step,
                "rng": get_rng_state(),
                "data": {"next_micro_batch": self.step * self.cfg.train.grad_accum,
                         "samples_seen": self.step * self.cfg.train.grad_accum * self.world * self.cfg.train.batch_size,
                         "seed": self.cfg.train.seed, "world_size": self.world},
                "optimizer": opt_meta,
                "ema_updates": self.ema.num_updates,
                "mixed_precision": self.acc.mixed_precision,
            }
            tensors = {"model": self.model.state_dict(), "ema": self.ema.shadow, "optimizer": opt_tensors}
            try:
                save_checkpoint(path, self.cfg, tensors, state)
            except CheckpointError as e:
                last = latest_checkpoint(self.run_dir)
                raise CheckpointError(f"step {self.step}: {e}; the last complete checkpoint is "
                                      f"{'step ' + str(checkpoint_step(last)) + ' in ' + str(last) if last else 'none'}"
                                      ) from None
            prune_checkpoints(self.ckpt_root, self.cfg.train.keep_ckpts)
        self.acc.wait_for_everyone()
        self.last_saved_step = self.step
        return path

    # ----- one optimiser step
    def train_step(self, batches) -> dict[str, float]:
        cfg = self.cfg
        lr = lr_at(self.step, cfg.train.lr, cfg.train.warmup_steps, cfg.train.max_steps, cfg.train.lr_schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        sums: dict[str, list[float]] = {}
        for micro in range(cfg.train.grad_accum):
            batch = {k: (v.to(self.acc.device, non_blocking=True) if torch.is_tensor(v) else v)
                     for k, v in next(batches).items()}
            seed = step_seed(cfg.train.seed, self.step, self.rank, micro)
            generator = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)  # any randomness inside the modules is a function of the step too
            with self.acc.accumulate(self.objective):
                with self.acc.autocast():
                    losses = self.objective(batch, self.step, generator)
                values = loss_values(losses)  # one device→host copy a step (a sync per term costs on a GPU)
                self._guard(values)
                self.acc.backward(losses["total"])
                if self.acc.sync_gradients and cfg.train.grad_clip > 0:
                    self.acc.clip_grad_norm_(self.params, cfg.train.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            for k, v in values.items():
                sums.setdefault(k, []).append(v)
        self.ema.update(self.model)
        self.step += 1
        out = {k: float(np.nanmean(v)) if not all(math.isnan(x) for x in v) else float("nan") for k, v in sums.items()}
        out["lr"] = lr
        return out

    def _guard(self, values: dict[str, float]) -> None:
        terms = {k: values[k] for k in LOSS_TERMS if k in values}
        if self.world > 1:  # every process must stop together, or the others hang in the all-reduce
            finite = torch.tensor([float(all(math.isfinite(v) for v in terms.values()))], device=self.acc.device)
            if float(self.acc.gather(finite).min()) < 1:
                bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
                check_finite(bad or {"total (on another process)": float("nan")}, self.step + 1)
        check_finite(terms, self.step + 1)

    def agreed_stop(self, reason: str | None) -> str | None:
        """A stop request seen by any process stops all of them after the same step (else DDP would hang)."""
        if self.world == 1:
            return reason
        flag = torch.tensor([0.0 if reason is None else 1.0], device=self.acc.device)
        if float(self.acc.gather(flag).max()) > 0:
            return reason or "terminated"
        return None

    # ----- benchmark probe
    @torch.no_grad()
    def probe(self, probe_fn) -> dict[str, float]:
        """The benchmark probe with the EMA weights, on the main process only: ``probe_fn(model, cfg, run_dir,
        step, device) -> {name: value}`` (the evaluation layer's ``evaluation.probe.probe_model``, handed down
        by the caller: training never imports the evaluation).

        The other processes wait at their next gradient all-reduce (a probe takes minutes, far below DDP's timeout).
        """
        if not self.acc.is_main_process:
            return {}
        model, was_training = self.model, self.model.training
        try:  # eager: a compiled UNet would compile again for the probe's shapes and no-grad mode
            with self.ema.swapped_in(model), torch.compiler.set_stance("force_eager"):
                return probe_fn(model, self.cfg, self.run_dir, self.step, str(self.acc.device))
        finally:
            model.train(was_training)

    # ----- sample grid
    @torch.no_grad()
    def sample_grid(self) -> Path | None:
        """EMA samples of held-out crops with their predicted character masks → ``samples/step_<n>.png``."""
        if not self.acc.is_main_process:
            return None
        from PIL import Image

        from ..diffusion.noise import make_scheduler
        from ..diffusion.sampling import sample_with_attention
        from ..visualize import image_grid, mask_overlay

        cfg = self.cfg
        n = min(4, cfg.train.batch_size)
        batch = next(step_batches(cfg, 0, 1, cfg.train.seed + SAMPLE_SEED_OFFSET))
        batch = {k: (v[:n].to(self.acc.device) if torch.is_tensor(v) else v[:n]) for k, v in batch.items()}
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with self.ema.swapped_in(model), torch.compiler.set_stance("force_eager"):
                cond = model.make_cond(batch)
                out = sample_with_attention(model, cond, make_scheduler(cfg), cfg.sample.steps, cfg.sample.guidance,
                                            torch.Generator().manual_seed(cfg.train.seed))
        finally:
            model.train(was_training)
        H, W = cfg.image_size
        masks = out.char_masks().float()  # (n, L, h', w')
        masks = torch.nn.functional.interpolate(masks, size=(H, W), mode="nearest").bool().cpu().numpy()

        from ..pixels import to_uint8 as u8  # (3, H, W) in [-1, 1] → uint8 (H, W, 3)

        rows, captions = [], []
        for i in range(n):
            text = batch["text"][i]
            sample = u8(out.x0[i])
            rows.append([u8(batch["masked_image"][i]), sample, mask_overlay(sample, masks[i, :len(text)]),
                         u8(batch["image"][i])])
            captions.append([f"input '{text}'", "sample (EMA)", "predicted masks", "ground truth"])
        grid = image_grid(rows, captions=captions, cell_height=max(H, 48))
        path = self.run_dir / "samples" / f"step_{self.step:08d}.png"
        atomic_save_image(path, Image.fromarray(grid))
        return path


def train(cfg: DreamTextConfig, resume: bool = False, progress: bool = True, probe=None) -> dict:
    """Train ``cfg`` (continuing its ``train.out_dir``'s latest checkpoint when ``resume``); returns a summary.

    ``probe``: the benchmark probe run every ``train.probe_every`` steps (``Trainer.probe``'s ``probe_fn``;
    ``dreamtext train`` passes ``evaluation.probe.probe_model``); required when ``train.probe_every`` > 0.

    Summary: ``run_dir``, ``step``, ``stopped`` ("finished" | "interrupted" | "terminated"),
    ``checkpoint`` (the last one written), ``metrics`` (the last logged values), ``seconds``,
    ``samples_per_s``, ``resumed_from``, ``weights_digest`` (of this process's weights),
    ``first_batch_texts`` (of this process: processes see different data), ``mixed_precision``.
    """
    if cfg.train.probe_every and probe is None:
        raise ConfigError("train.probe_every > 0 needs a probe: pass probe=dreamtext.evaluation.probe.probe_model "
                          "(dreamtext train does), or set train.probe_every=0")
    fresh = not Path(cfg.train.out_dir).exists()  # a failed start removes only a folder it created itself
    trainer = Trainer(cfg, resume=resume)
    acc, t = trainer.acc, cfg.train
    main = acc.is_main_process
    if main and resume:
        remove_stale_temp_dirs(trainer.ckpt_root)
    logger = None
    try:
        logger = MetricsLogger(trainer.run_dir, resume_step=trainer.step if trainer.resumed_from else None) \
            if main else None
        batches = step_batches(cfg, trainer.rank, trainer.world, t.seed, start_micro=trainer.step * t.grad_accum)
        batches = _prepend(next(batches), batches)  # the data source's errors surface here, before any step
    except BaseException:
        if logger:
            logger.close()
        if fresh and main:
            shutil.rmtree(trainer.run_dir, ignore_errors=True)
        raise
    first = next(batches)
    first_texts = list(first["text"])
    batches = _prepend(first, batches)

    def step_fn(_step: int) -> dict:
        return trainer.train_step(batches)

    def on_log(step: int, means: dict) -> None:
        if logger:
            logger.log(step, {f"loss/{k}" if k in LOSS_TERMS else k: v for k, v in means.items()})

    def probe_step(step: int) -> None:
        probed = trainer.probe(probe)
        if logger and probed:
            logger.log(step, probed)

    samples_per_step = t.batch_size * t.grad_accum * trainer.world
    start_step = trainer.step
    try:
        run = run_steps(trainer.step, t.max_steps, step_fn, log_every=t.log_every, on_log=on_log,
                        save=lambda step: trainer.save(), ckpt_every=t.ckpt_every,
                        periodic=((t.sample_every, lambda step: trainer.sample_grid()), (t.probe_every, probe_step)),
                        progress=progress and main, desc="train", samples_per_step=samples_per_step,
                        postfix=lambda v: {"loss": f"{v['total']:.4f}", "miou": f"{v.get('miou', float('nan')):.2f}"},
                        agree=trainer.agreed_stop)
    finally:
        if logger:
            logger.close()
    stopped, last, seconds = run.stopped, run.last, run.seconds
    latest = latest_checkpoint(trainer.run_dir)
    return {
        "run_dir": str(trainer.run_dir),
        "step": trainer.step,
        "stopped": stopped,
        "checkpoint": str(latest) if latest else None,
        "metrics": last,
        "seconds": seconds,
        "samples_per_s": samples_per_step * (trainer.step - start_step) / max(seconds, 1e-9),
        "resumed_from": str(trainer.resumed_from) if trainer.resumed_from else None,
        "weights_digest": weights_sha256(trainer.model),
        "first_batch_texts": first_texts,
        "mixed_precision": acc.mixed_precision,
        "world_size": trainer.world,
        "is_main": main,
    }


def _prepend(first, rest):
    yield first
    yield from rest
