"""``dreamtext probe``: the trainer's benchmark probe, run afterwards on a checkpoint of a run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="run the benchmark probe on a run's checkpoint and add it to the run's curves",
                       description="Evaluate a run's checkpoint (EMA weights) as the trainer's probe does — recon "
                                   "and edit on the first train.probe_size bench records, train.probe_steps "
                                   "sampling steps — and append the values to RUN/metrics.jsonl at the "
                                   "checkpoint's step (reports in RUN/probes/step_N/), for runs trained with "
                                   "train.probe_every=0 or where the OCR was not installed.")
    p.add_argument("run", help="training run directory")
    p.add_argument("--checkpoint", default=None, help="a checkpoint directory of the run (default: its latest)")
    p.add_argument("--size", type=int, default=None, help="records (default: the run's train.probe_size)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the run's train.probe_steps)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluation.probe import probe_checkpoint

    for name in ("size", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be at least 1")
    step, values = probe_checkpoint(args.run, args.checkpoint, size=args.size, steps=args.steps,
                                    progress=not args.no_progress)
    print(f"probe of step {step}: " + ", ".join(f"{k.split('/', 1)[1]} {v:.3f}" for k, v in values.items()))
    print(f"appended to {args.run}/metrics.jsonl; reports in {args.run}/probes/step_{step:08d}/")
    return 0
