"""Editing latency: seconds per region at 10/20/50 sampling steps, peak memory, and batching's gain.

    .venv/bin/python benchmarks/edit_latency.py [--preset tiny] [--regions 4] [--repeats 3] [--steps 10 20 50]

Measures ``DreamTextPipeline.edit`` on the shipped ``rocket.jpg`` sample with
``--regions`` regions (all sampled in one batch, conditional and unconditional
passes together), against the same edit done the straightforward way: for
each region in turn, a loop over diffusers' DDIMScheduler with separate
conditional and unconditional UNet calls (same crops, same paste-back). The
model is randomly initialised (latency does not depend on the weights). The
two ways alternate within each repeat so machine load hits both alike; the
table reports medians and the naive/batched ratio, both in wall-clock seconds
and in CPU seconds of the process (``time.process_time``, all threads): on a
shared machine the CPU time is the steadier measure of the work an edit costs.
Peak memory is the process's peak resident set size (``ru_maxrss``) after the
batched runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dreamtext.config import load_config  # noqa: E402
from dreamtext.diffusion.noise import make_scheduler  # noqa: E402
from dreamtext.edit.pipeline import DreamTextPipeline, paste_back, quad_height  # noqa: E402
from dreamtext.io_utils import read_image_rgb  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402

SAMPLE = ROOT / "dreamtext" / "assets" / "samples" / "rocket.jpg"
REGIONS = [(30, 40, 150, 72), (352, 44, 452, 80), (180, 250, 300, 280), (330, 200, 460, 236),
           (20, 150, 140, 180), (200, 20, 290, 50), (40, 280, 150, 310), (300, 120, 420, 150)]
WORDS = ["ORBIT", "Sky12", "moon", "Falcon", "DSCOVR", "go", "Pad40", "launch"]


@torch.no_grad()
def naive_edit(pipe: DreamTextPipeline, img: np.ndarray, quads, texts, steps: int, guidance: float, seed: int):
    """One region at a time; a diffusers scheduler loop with separate conditional / unconditional UNet calls."""
    model, cfg = pipe.model, pipe.cfg
    out = img
    g = torch.Generator().manual_seed(seed)
    for quad, text in zip(quads, texts):
        batch, matrices, _ = pipe.prepare(img, [quad], [text])
        cond = model.make_cond(batch)
        uncond = model.make_cond(batch, drop=torch.ones(1, dtype=torch.bool))
        scheduler = make_scheduler(cfg, "ddim")
        scheduler.set_timesteps(steps)
        z = torch.randn(1, cfg.latent_channels, *cfg.latent_size, generator=g) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            tt = t.reshape(1)
            eps_c = model(z, tt, cond)
            eps_u = model(z, tt, uncond)
            z = scheduler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
        x0 = model.decode_latent(z).clamp(-1, 1)
        crop = ((x0[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        out = paste_back(out, crop, matrices[0], quad, max(1.0, cfg.sample.feather * quad_height(quad)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.preset)
    # One pass per edit, like the naive loop: the table is about the cost of a step, and restart sampling
    # (the tiny default, 2 restarts at 0.6) multiplies both sides' calls alike (steps + 2·int(0.6·steps)).
    cfg.sample.restarts = 0
    model = DreamTextModel(cfg).eval()
    pipe = DreamTextPipeline(model, cfg)
    n_params = sum(p.numel() for p in model.parameters())
    img = read_image_rgb(SAMPLE)
    boxes, texts = REGIONS[: args.regions], [w[: cfg.max_len] for w in WORDS[: args.regions]]
    quads = pipe._check_inputs(img, boxes, texts)[0]
    pipe.edit(img, boxes[:1], texts[:1], steps=2)  # warm-up
    naive_edit(pipe, img, quads[:1], texts[:1], 2, args.guidance, 0)

    rows = []
    for steps in args.steps:
        ours, naive, ours_cpu, naive_cpu = [], [], [], []
        for r in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            pipe.edit(img, boxes, texts, steps=steps, guidance=args.guidance, sampler="ddim", seed=r)
            ours.append(time.perf_counter() - t)
            ours_cpu.append(time.process_time() - c)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t, c = time.perf_counter(), time.process_time()
            naive_edit(pipe, img, quads, texts, steps, args.guidance, r)
            naive.append(time.perf_counter() - t)
            naive_cpu.append(time.process_time() - c)
        med = statistics.median
        n = args.regions
        row = {"steps": steps, "regions": n, "s_per_region": med(ours) / n, "naive_s_per_region": med(naive) / n,
               "cpu_s_per_region": med(ours_cpu) / n, "naive_cpu_s_per_region": med(naive_cpu) / n,
               "ratio_wall": med(naive) / med(ours), "ratio_cpu": med(naive_cpu) / med(ours_cpu),
               "peak_rss_mb": peak_mb}
        rows.append(row)
        print(f"steps {steps:3d}: per region {row['s_per_region']:.2f} s wall / {row['cpu_s_per_region']:.2f} s CPU "
              f"batched, {row['naive_s_per_region']:.2f} s / {row['naive_cpu_s_per_region']:.2f} s naive loop; "
              f"ratio {row['ratio_wall']:.2f}× wall, {row['ratio_cpu']:.2f}× CPU; peak RSS {peak_mb:.0f} MB",
              flush=True)
    summary = {"preset": args.preset, "params": n_params, "threads": torch.get_num_threads(),
               "image": SAMPLE.name, "repeats": args.repeats, "rows": rows}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
