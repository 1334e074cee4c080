"""Training throughput of a preset (default tiny): DreamText's full objective vs the bare diffusion loss, 1 vs 2 processes.

    .venv/bin/python benchmarks/train_throughput.py [--preset tiny] [--batch 16] [--steps 8] [--procs 2]
    python benchmarks/train_throughput.py --sweep 128,256,512 --steps 10 --set train.bf16=false   # on a GPU

What is timed: whole optimiser steps of ``dreamtext.train.trainer.Trainer.train_step``
(forward, backward, clipping, AdamW, EMA; DDP all-reduce with 2 processes) on
one fixed batch of real synthetic samples, so the data engine's cost is left
out (it is reported separately as ``data_samples_per_s``). Reported: median
step time over ``--steps`` steps after 2 warm-up steps, as samples/s, for

- ``full``: attention capture + §3 masks + L_mask + α·L_attn + β·(L_align + L_id)
  (``TrainingObjective(full=True)``, what ``dreamtext train`` runs);
- ``bare``: the plain ε-MSE on the same UNet, no capture, no heads
  (``TrainingObjective(full=False)``) — ``overhead = full step time / bare step time``
  (target ≤ 1.3×);
- ``full, N processes``: the same command under ``torchrun --nproc_per_node N`` on
  CPU (gloo), each process with ``--batch`` samples and cores/N threads:
  global samples/s = N·batch / step time.

``--sweep B1,B2,... [--compile]`` times only the full objective, one process, at each batch
size (on a GPU, where the tiny model's step is dominated by launching its
kernels, samples/s grows with the batch until the card is busy: the sweep says
which batch to train with; ``--compile`` times each batch a second time with
``train.compile=true``, its ``first_step_s`` the compilation). ``--set KEY=VALUE`` (repeatable) overrides any
config setting, e.g. ``train.bf16=false`` or ``train.tf32=false``.

Wall-clock medians depend on what else runs on the machine; the median CPU
seconds per step (``median_step_cpu_s``, this process, all its threads) hardly
do, so the overhead is also given as a ratio of CPU times.

Prints one JSON object (and writes it to ``--json`` when given).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config(preset: str, batch: int, out_dir: str, overrides: tuple[str, ...] = ()):
    from dreamtext.config import load_config

    return load_config(preset, overrides=[f"train.batch_size={batch}", f"train.out_dir={out_dir}",
                                          "train.ckpt_every=0", "train.sample_every=0", "train.warmup_steps=0",
                                          *overrides])


def time_steps(cfg, full: bool, steps: int, warmup: int = 2) -> dict:
    """Median optimiser-step time of a Trainer on one fixed batch (this process)."""
    import torch

    from dreamtext.train.trainer import Trainer
    from dreamtext.train.utils import step_batches

    trainer = Trainer(cfg)
    trainer.acc.unwrap_model(trainer.objective).full = full
    batch = next(step_batches(cfg, trainer.rank, trainer.world, cfg.train.seed))
    batches = itertools.repeat(batch)
    times, cpu, first = [], [], None
    for i in range(warmup + steps):
        trainer.acc.wait_for_everyone()
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step(batches)
        c1 = time.process_time()  # this process's CPU time (all its threads), before waiting for the others
        trainer.acc.wait_for_everyone()
        if i == 0:  # with train.compile, the compilation is in here
            first = time.perf_counter() - t0
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(c1 - c0)
    step = statistics.median(times)
    n = cfg.train.batch_size * trainer.world
    return {"objective": "full" if full else "bare", "processes": trainer.world, "threads": torch.get_num_threads(),
            "median_step_s": step, "samples_per_s": n / step, "first_step_s": first, "median_step_cpu_s": statistics.median(cpu), "mixed_precision": trainer.acc.mixed_precision,
            "is_main": trainer.acc.is_main_process}


def data_rate(cfg, batches: int = 3) -> float:
    from dreamtext.train.utils import step_batches

    it = step_batches(cfg, 0, 1, cfg.train.seed)
    next(it)  # font discovery etc.
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * cfg.train.batch_size / (time.perf_counter() - t0)


def _sweep(args, tmp: str) -> int:
    """``--sweep``: the full objective's step time at each batch size, one process; prints JSON lines as it goes."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, device = [], "cuda" if torch.cuda.is_available() else "cpu"
    for batch in (int(b) for b in args.sweep.split(",")):
        for compiled in (False, True) if args.compile else (False,):
            extra = ("train.compile=true",) if compiled else ()
            cfg = _config(args.preset, batch, str(Path(tmp) / f"sweep{batch}{'c' * compiled}"), (*args.set, *extra))
            res = time_steps(cfg, True, args.steps)
            row = {"batch": batch, "compile": cfg.train.compile, "median_step_s": res["median_step_s"],
                   "samples_per_s": res["samples_per_s"], "first_step_s": res["first_step_s"],
                   "mixed_precision": res["mixed_precision"], "device": device}
            if device == "cuda":
                row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
                torch.cuda.reset_peak_memory_stats()
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16, help="samples per process per step")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--procs", type=int, default=2, help="also time this many processes (0: skip)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per single process (0: torch's default)")
    ap.add_argument("--sweep", default=None, help="comma-separated batch sizes: time the full objective at each")
    ap.add_argument("--compile", action="store_true",
                    help="--sweep: time each batch eager and with train.compile (first_step_s holds the compilation)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one torchrun process
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(args.preset, args.batch, str(Path(tmp) / "run"), tuple(args.set))
        if args.sweep:
            return _sweep(args, tmp)
        if args.worker:
            res = time_steps(cfg, True, args.steps)
            if res["is_main"]:
                Path(args.worker).write_text(json.dumps(res))
            return 0
        import torch

        from dreamtext.model.network import DreamTextModel, count_parameters

        if args.threads:
            torch.set_num_threads(args.threads)

        out = {"preset": args.preset, "batch_per_process": args.batch, "steps": args.steps,
               "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "parameters": count_parameters(DreamTextModel(cfg)),
               "load_average_1min": os.getloadavg()[0]}
        out["data_samples_per_s"] = data_rate(cfg)
        full = time_steps(cfg, True, args.steps)
        bare = time_steps(_config(args.preset, args.batch, str(Path(tmp) / "run2"), tuple(args.set)), False, args.steps)
        out["full"], out["bare"] = full, bare
        out["overhead_full_over_bare"] = full["median_step_s"] / bare["median_step_s"]
        # CPU seconds per step hardly depend on what else the machine runs (wall time does)
        out["overhead_full_over_bare_cpu"] = full["median_step_cpu_s"] / bare["median_step_cpu_s"]
        if args.procs > 1:
            res_path = Path(tmp) / "multi.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.procs),
                   "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__,
                   "--preset", args.preset, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--worker", str(res_path)]
            env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // args.procs)))
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            multi = json.loads(res_path.read_text())
            out[f"full_{args.procs}_processes"] = multi
            out["speedup_processes"] = multi["samples_per_s"] / full["samples_per_s"]
        out["load_average_1min_end"] = os.getloadavg()[0]
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
