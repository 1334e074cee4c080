"""Two models side by side on photographs: the region before, then each model's edit (the README's pictures).

    python benchmarks/style_photos.py --jobs dreamtext/assets/samples/samples.json \
        --ckpt dreamtext/assets/model --ckpt runs/arm-style --label "v6" --label "v7" --out docs/img/style_v6_v7.png

``--jobs``: a ``dreamtext edit --spec``-style JSON list (``image`` relative to the file, ``regions`` with
``box`` or ``quad`` and ``text``); each region becomes one row: the context around it before the edit, then
one column per ``--ckpt`` (the same seed for all; each model with its default sampling, a model with the
style reference shown the old word). ``--out`` gets the grid as PNG. ``--upscale`` (one per ``--ckpt``) sets
each column's paste-back detail (bilinear, unsharp, refiner) and ``--blend`` (once for all, or one per
``--ckpt``) its paste-back, so one model can fill several columns:

    python benchmarks/style_photos.py --jobs dreamtext/assets/samples/samples.json --only brick.jpg \
        --ckpt dreamtext/assets/model --ckpt dreamtext/assets/model --upscale bilinear --upscale refiner \
        --label "v7, bilinear" --label "v7, refiner" --cell-height 0 --out docs/img/refiner_brick.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.edit.regions import parse_region
    from dreamtext.io_utils import atomic_save_image, read_image_rgb
    from dreamtext.visualize import context_box, image_grid

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", required=True)
    p.add_argument("--ckpt", action="append", required=True, help="a model (repeat: one column each)")
    p.add_argument("--label", action="append", default=None, help="a column title per --ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blend", action="append", default=None,
                   help="paste-back: one for every column, or one per --ckpt (default: each model's)")
    p.add_argument("--upscale", action="append", default=None, help="a column's sample.upscale, one per --ckpt")
    p.add_argument("--only", default=None, help="only the job of this image file")
    p.add_argument("--margin", type=float, default=0.6, help="context around each region, × its size")
    p.add_argument("--cell-height", type=int, default=110, help="row height in pixels (0: 100 %%, no resizing)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    labels = args.label or [Path(c).name for c in args.ckpt]
    if len(labels) != len(args.ckpt):
        p.error("give one --label per --ckpt")
    upscales = args.upscale or [None] * len(args.ckpt)
    if len(upscales) != len(args.ckpt):
        p.error("give one --upscale per --ckpt")
    blends = args.blend or [None]
    blends = blends * len(args.ckpt) if len(blends) == 1 else blends
    if len(blends) != len(args.ckpt):
        p.error("give one --blend for all columns or one per --ckpt")
    jobs_path = Path(args.jobs)
    jobs = json.loads(jobs_path.read_text())
    loaded = {c: DreamTextPipeline.from_pretrained(c) for c in dict.fromkeys(args.ckpt)}
    pipes = [loaded[c] for c in args.ckpt]
    rows, captions = [], []
    for job in jobs:
        if args.only and job["image"] != args.only:
            continue
        image = read_image_rgb(jobs_path.parent / job["image"])
        for region in job["regions"]:
            spec = {k: v for k, v in region.items() if k in ("box", "quad")}
            quad = parse_region(spec, image.shape[:2])
            rs, cs = context_box(quad, image.shape[:2], margin=args.margin)
            cells = [image[rs, cs]]
            for pipe, upscale, blend in zip(pipes, upscales, blends):
                edited = pipe.edit(image, [spec], [region["text"]], seed=args.seed, blend=blend, upscale=upscale)
                cells.append(np.asarray(edited.image)[rs, cs])
            rows.append(cells)
            captions.append([f"before: {region.get('was', '')}"] + [f"{label}: {region['text']}" for label in labels])
            print(f"{job['image']}: {region.get('was', '?')!r} → {region['text']!r}", file=sys.stderr)
    grid = image_grid(rows, captions=captions, cell_height=args.cell_height or None)
    atomic_save_image(args.out, grid)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
