"""``dreamtext curves``: the training-curve picture of a run (losses, mask mIoU, probe SeqAcc over steps)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curves", help="draw a training run's curves (losses, mIoU, SeqAcc) as a PNG",
                       description="Read RUN/metrics.jsonl and draw every loss term, the character-mask mIoU and "
                                   "the benchmark probe's SeqAcc (train.probe_every, or dreamtext probe) "
                                   "against the step.")
    p.add_argument("run", nargs="+", help="training run directory (holds metrics.jsonl); several runs, one "
                                          "fine-tuned from the one before, are drawn one after another over "
                                          "training samples seen")
    p.add_argument("--out", default=None, help="PNG to write (default: RUN/curves.png)")
    p.add_argument("--title", default=None, help="figure title (default: the run's name and last step)")
    p.add_argument("--arms", action="store_true",
                   help="the runs are paired arms of one experiment: draw them side by side on one step axis")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.curves import plot_arms, plot_run

    plot = plot_arms if args.arms else plot_run
    out = plot(args.run, args.out or Path(args.run[-1]) / "curves.png", title=args.title)
    print(f"wrote {out}")
    return 0
