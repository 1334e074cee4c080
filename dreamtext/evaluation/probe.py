"""The benchmark probe: the evaluation protocol on the first records of the bench split, as curve points.

The trainer runs it every ``train.probe_every`` steps with its EMA weights; ``dreamtext probe`` runs the same
measurement afterwards on a run's checkpoint — for runs trained where the OCR is not installed or with
``train.probe_every=0`` (a short run on a lent GPU, say). Either way the values land in the run's
``metrics.jsonl`` as ``probe/*`` at the checkpoint's step and each task's report in ``probes/step_<n>/<task>/``,
so ``dreamtext curves`` draws them alike.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

PROBE_TASKS = ("recon", "edit")


def probe_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "probes" / f"step_{step:08d}"


def probe_model(model, cfg, run_dir: str | Path, step: int, device: str = "cpu") -> dict[str, float]:
    """The training probe (``train(..., probe=probe_model)``): ``run_probe`` of ``model`` (its weights as they
    are: the trainer swaps the EMA in) into ``run_dir/probes/step_<n>/``."""
    from ..edit.pipeline import DreamTextPipeline

    pipe = DreamTextPipeline(model, cfg, device=device)  # puts the model in eval()
    return run_probe(pipe, cfg.train, probe_dir(run_dir, step))


def run_probe(pipe, train_cfg, out_root: str | Path, progress: bool = False) -> dict[str, float]:
    """Evaluate ``pipe`` on the first ``train_cfg.probe_size`` bench records with ``probe_steps`` sampling steps.

    Returns ``probe/{recon,edit}_seq_acc`` (case-insensitive), ``probe/{recon,edit}_ned``, ``probe/mask_miou``
    with its letter-blind baseline ``probe/mask_miou_slices`` and ``probe/ocr_ceiling`` (recon); each task's
    report goes to ``out_root/<task>/``.
    """
    from .evaluate import EvalSettings, evaluate

    values = {}
    for task in PROBE_TASKS:
        # On a GPU the tiny UNet is launch-bound: 16 records per call cost about what one does (same noise).
        settings = EvalSettings(data="bench", task=task, limit=train_cfg.probe_size, steps=train_cfg.probe_steps,
                                report_samples=4, batch=16 if pipe.device.type == "cuda" else 1,
                                device=str(pipe.device))
        metrics = evaluate(settings, Path(out_root) / task, pipeline=pipe, progress=progress)["metrics"]
        values[f"probe/{task}_seq_acc"] = metrics["seq_acc_ci"]
        values[f"probe/{task}_ned"] = metrics["ned"]  # moves long before SeqAcc leaves 0
        if task == "recon":
            values["probe/ocr_ceiling"] = metrics["ocr_ceiling_seq_acc_ci"]
            for key in ("mask_miou", "mask_miou_slices"):
                if key in metrics:
                    values[f"probe/{key}"] = metrics[key]
    return values


def probe_checkpoint(run_dir: str | Path, checkpoint: str | Path | None = None, *, size: int | None = None,
                     steps: int | None = None, progress: bool = True) -> tuple[int, dict[str, float]]:
    """Probe one checkpoint of a run after the fact (EMA weights) and log it into the run; returns (step, values).

    ``checkpoint``: a checkpoint directory of the run (default: its latest). ``size`` / ``steps`` override the
    run's ``train.probe_size`` / ``train.probe_steps`` (the defaults keep the curve's points comparable).
    A step that already has probe values is refused: two points at one step would not say which to believe.
    """
    import dataclasses

    from ..edit.pipeline import DreamTextPipeline
    from ..model.checkpoint import latest_checkpoint, read_json, resolve_checkpoint
    from ..train.utils import MetricsLogger, read_metrics

    run_dir = Path(run_dir)
    records = read_metrics(run_dir, required=True)
    ckpt = resolve_checkpoint(checkpoint) if checkpoint is not None else latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"run {str(run_dir)!r} has no checkpoint to probe")
    state = read_json(ckpt / "state.json")
    if not isinstance(state.get("step"), int):
        raise CheckpointError(f"{str(ckpt)!r} is not a training checkpoint (its state.json has no step)")
    step = state["step"]
    if any(r.get("step") == step and any(k.startswith("probe/") for k in r) for r in records):
        raise CheckpointError(f"step {step} of {str(run_dir)!r} already has probe values in metrics.jsonl")
    pipe = DreamTextPipeline.from_pretrained(ckpt)  # EMA weights when present
    t = pipe.cfg.train
    t = dataclasses.replace(t, probe_size=size or t.probe_size, probe_steps=steps or t.probe_steps)
    values = run_probe(pipe, t, probe_dir(run_dir, step), progress=progress)
    # Appended (one line, one write): a run still training beside it keeps writing its own lines.
    with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(MetricsLogger.format_line(step, values))
    return step, values
