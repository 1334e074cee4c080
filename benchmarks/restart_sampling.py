"""Restart sampling vs a single pass: the evaluation protocol on the first N ``bench`` records.

    .venv/bin/python benchmarks/restart_sampling.py --ckpt runs/ship-v3-step2000 --limit 64 \\
        --steps 10 --specs 0:0.6 2:0.6 1:0.6 4:0.6 2:0.4 2:0.8

Each spec ``K:S`` runs ``dreamtext eval``'s protocol (one pipeline, seeds 0…N−1, guidance from the
checkpoint) with ``restarts = K`` and ``restart_strength = S``; the table gives SeqAcc, NED, mask mIoU,
UNet calls per region (steps + K · int(steps · S)) and seconds per record on this machine.
"""

from __future__ import annotations

import argparse
import tempfile


def main() -> None:
    import torch

    from dreamtext.diffusion.sampling import restart_step_count
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.evaluate import EvalSettings, evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    ap.add_argument("--task", choices=["recon", "edit"], default="recon")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--specs", nargs="+", default=["0:0.6", "2:0.6"], help="restarts:strength pairs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    print(f"{args.task}, first {args.limit} bench records, {args.steps} steps, {args.threads} thread(s)")
    print("| restarts | strength | UNet calls | SeqAcc ci | NED | mask mIoU | s / record |\n|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.specs:
        restarts, strength = int(spec.split(":")[0]), float(spec.split(":")[1])
        pipe.cfg.sample.restart_strength = strength
        with tempfile.TemporaryDirectory() as out:
            m = evaluate(EvalSettings(data="bench", task=args.task, ckpt=args.ckpt, limit=args.limit,
                                      steps=args.steps, restarts=restarts), out, pipeline=pipe,
                         progress=False)["metrics"]
        calls = args.steps + restarts * restart_step_count(args.steps, strength)
        miou = f"{m['mask_miou']:.3f}" if "mask_miou" in m else "–"
        print(f"| {restarts} | {strength:g} | {calls} | {m['seq_acc_ci']:.1%} | {m['ned']:.3f} | {miou} | "
              f"{m['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
