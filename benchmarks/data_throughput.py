"""Samples per second of the data path on ONE core, at the tiny preset's resolution (32×128).

Measures, in one process pinned to one thread (OpenCV and BLAS single-threaded):
  generator   SynthGenerator.sample(i)            (scene rendering with full ground truth)
  transform   make_model_sample(record, cfg)       (pad / crop / resize, masks, word crop)
  both        the two together (what one DataLoader worker does per training sample)
  pair        an edit pair (SynthGenerator.sample_pair) and its transform: a data.edit_pairs sample
Each is timed ``--repeats`` times over ``--num`` samples; medians are reported, both per
wall-clock second and per CPU second of this process (the latter is what one core delivers
even when other jobs share the machine). The generator is warmed first (fonts, photographs,
and the per-(font, size, character) glyph cache that a long training run keeps warm: every glyph
is pre-rendered unless --no-warm-glyphs).

    .venv/bin/python benchmarks/data_throughput.py [--num 400] [--repeats 5] [--warmup 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _rate(fn, items) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for x in items:
        fn(x)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return len(items) / w, len(items) / max(c, 1e-9)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3000, help="generator samples rendered before timing")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--no-warm-glyphs", dest="warm_glyphs", action="store_false",
                    help="skip pre-rendering every (font, size, character) glyph (times a colder cache)")
    args = ap.parse_args(argv)

    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from dreamtext.config import load_config
    from dreamtext.data.render import SynthGenerator, SynthParams, warm_glyph_cache
    from dreamtext.data.text_line import glyph_bitmap as _glyph
    from dreamtext.data.transforms import make_edit_sample, make_model_sample

    cfg = load_config(args.preset)
    gen = SynthGenerator(cfg, seed=0)
    t0 = time.perf_counter()
    for i in range(args.warmup):
        gen.sample(10_000_000 + i)
    if args.warm_glyphs:
        warm_glyph_cache(SynthParams.from_config(cfg))
    warm_s = time.perf_counter() - t0
    misses0 = _glyph.cache_info().misses

    results = {"generator": [], "transform": [], "both": [], "pair": []}
    for r in range(args.repeats):
        idx = list(range(r * args.num, (r + 1) * args.num))
        results["generator"].append(_rate(gen.sample, idx))
        records = [gen.sample(i) for i in idx]
        results["transform"].append(_rate(lambda rec: make_model_sample(rec, cfg), records))
        results["both"].append(_rate(lambda i: make_model_sample(gen.sample(i), cfg), idx))
        results["pair"].append(_rate(lambda i: make_edit_sample(*gen.sample_pair(i), cfg), idx))
    summary = {
        "preset": args.preset, "image_size": list(cfg.image_size), "num": args.num, "repeats": args.repeats,
        "warmup_samples": args.warmup, "warmup_s": round(warm_s, 1), "cpu_count": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2), "warm_glyphs": args.warm_glyphs,
        "glyph_cache_misses_while_timing": _glyph.cache_info().misses - misses0,
    }
    for k, v in results.items():
        summary[f"{k}_per_wall_s"] = round(statistics.median(x[0] for x in v), 1)
        summary[f"{k}_per_cpu_s"] = round(statistics.median(x[1] for x in v), 1)
    print(f"data throughput on one core, preset {args.preset} {tuple(cfg.image_size)}, "
          f"median of {args.repeats} × {args.num} samples (load average {summary['loadavg_1min']}):")
    for k in results:
        print(f"  {k:10s} {summary[k + '_per_cpu_s']:8.1f} samples per CPU-second   "
              f"{summary[k + '_per_wall_s']:8.1f} per wall-second")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
