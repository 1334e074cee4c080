"""Seconds per training step (forward + backward) of candidate tiny-preset sizes, full DreamText objective.

    .venv/bin/python benchmarks/model_step_time.py [--batch 32] [--steps 3] [--sizes a,b,...]

Each size: a randomly initialised model, one fixed hand-built batch, bf16 autocast on the CPU, attention
capture + §3 masks + every §4 loss, one warm-up step then the median of ``--steps`` timed steps (optimiser
step included). Prints a Markdown table (parameters of ψ+ξ and of the UNet, s/step, samples/s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _model_fixtures import make_batch  # noqa: E402

from dreamtext.config import load_config  # noqa: E402
from dreamtext.model.network import DreamTextModel, count_parameters  # noqa: E402
from dreamtext.train.losses import TrainingObjective  # noqa: E402

SIZES = {
    # name: overrides on the tiny preset
    "S (32,64,128) lpb1 d256": {},
    "S-bare (same UNet, ε-MSE only)": {"__bare__": True},
    "M (32,64,128) lpb2 d256": {"unet.layers_per_block": 2},
    "L (64,128,256) lpb1 d256": {"unet.block_out_channels": [64, 128, 256]},
    "S-selfattn (32,64,128) lpb1, self-attention": {"unet.only_cross_attention": False},
}

WORDS = ["Hello", "world", "DREAM", "text42", "quartz", "Sphinx", "of", "black", "judge", "vow", "Ab3", "zephyr",
         "Mkay", "Pixel", "gamma", "Delta7", "row", "Kilo", "lima", "NOVEMBER", "oscar", "papa", "Q", "romeo",
         "sierra", "tango", "Union", "victor", "whisky", "xray", "yankee", "Zulu"]


def time_size(overrides: dict, batch_size: int, steps: int, bf16: bool) -> dict:
    overrides = dict(overrides)
    bare = overrides.pop("__bare__", False)
    cfg = load_config("tiny", overrides=overrides) if overrides else load_config("tiny")
    torch.manual_seed(0)
    model = DreamTextModel(cfg).train()
    objective = TrainingObjective(model, cfg, full=not bare)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    batch = make_batch(cfg, [WORDS[i % len(WORDS)] for i in range(batch_size)])
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = objective(batch, step=i)
        losses["total"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {"text_params": count_parameters(model.text_encoder), "unet_params": count_parameters(model.unet),
            "s_per_step": s, "samples_per_s": batch_size / s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(str(i) for i in range(len(SIZES))),
                    help="comma-separated indices into: " + "; ".join(f"{i}={n}" for i, n in enumerate(SIZES)))
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(SIZES)
    print(f"batch {args.batch}, {'fp32' if args.fp32 else 'bf16 autocast'}, median of {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print("| size | ψ+ξ params | UNet params | s/step | samples/s |\n|---|---|---|---|---|")
    for idx in args.sizes.split(","):
        name = names[int(idx)]
        r = time_size(SIZES[name], args.batch, args.steps, not args.fp32)
        print(f"| {name} | {r['text_params'] / 1e6:.2f}M | {r['unet_params'] / 1e6:.2f}M | {r['s_per_step']:.2f} | "
              f"{r['samples_per_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
