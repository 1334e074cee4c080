"""Detail at the photo's resolution (issue 28): the paste-back's upscale modes on the paired benchmark, per height.

    OMP_NUM_THREADS=1 python benchmarks/upscale_modes.py --out runs/bench/upscale            # whole split, v7
    OMP_NUM_THREADS=1 python benchmarks/upscale_modes.py --limit 48 --refiner runs/refiner --out /tmp/u
    OMP_NUM_THREADS=1 python benchmarks/upscale_modes.py --time --out runs/bench/upscale-time   # idle CPU
    # on both cores: two halves, then one summary of both
    python benchmarks/upscale_modes.py --start 0 --limit 250 --out runs/bench/upscale-a &
    python benchmarks/upscale_modes.py --start 250 --limit 250 --out runs/bench/upscale-b; wait
    python benchmarks/upscale_modes.py --summarise runs/bench/upscale-a runs/bench/upscale-b --out runs/bench/upscale

Each pair of the paired split (``dreamtext eval --task style``'s, same seeds: pair i is seeded i) is sampled
once with the model's default options; its crop is then pasted back with each ``sample.upscale`` mode
(bilinear, unsharp, matte, transfer, refiner) and each result is scored against the ground-truth edit as the style task scores
it (``style_eval.score_pair``: sharpness ratio, SSIM, text-colour and background CIEDE2000; the evaluation OCR
for SeqAcc). The sampling being shared, the modes differ only by their paste-back: a difference between them is
the mode's, not the sampler's. Per word-height bucket (16–32, 32–64, 64–160 px): medians of the sharpness ratio
and colour errors, means of SSIM and SeqAcc, and the median CPU seconds of the detail step alone per region.

Writes ``OUT/rows.jsonl`` (one row per pair and mode), ``OUT/summary.json``, ``OUT/summary.md``,
``OUT/tallest.png`` (the tallest words: source | each mode | truth, at 100 %) and
``OUT/crops/`` (each pair's generated window, so ``--from-crops`` can paste the same samples again).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np

MODES = ("bilinear", "unsharp", "matte", "transfer", "refiner")


def run(args) -> dict:
    from dreamtext.data.geometry import enlargement
    from dreamtext.data.pairs import StylePairs
    from dreamtext.edit.detail import restore_detail
    from dreamtext.edit.paste import paste_back, quad_height
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation import metrics as M
    from dreamtext.evaluation.ocr import make_recognizer, rectify_quad
    from dreamtext.evaluation.style_eval import score_pair
    from dreamtext.model.refiner import load_refiner

    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    refiner = load_refiner(args.refiner)[0]
    pairs = StylePairs(pipe.cfg)
    blend = args.blend or pipe.cfg.sample.blend  # one paste-back blend for every mode
    modes = args.modes or MODES
    recognizer = make_recognizer("rapidocr")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, pictures = [], []
    first = args.start
    last = len(pairs) if args.limit is None else min(first + args.limit, len(pairs))
    n = last - first
    t_start = time.perf_counter()
    with open(out_dir / "rows.jsonl", "w") as f:
        for i in range(first, last):
            source, truth = pairs.pair(i)
            quad = source.word_quad
            saved = Path(args.from_crops or out_dir) / "crops" / f"{i:05d}.npz"
            if args.from_crops:  # the base model's crop of an earlier run: only the paste-backs are redone
                piece = SimpleNamespace(**{k: v[()] if v.ndim == 0 else v for k, v in np.load(saved).items()})
                bilinear_image = paste_back(source.image, piece.crop, piece.matrix, quad, float(piece.feather_px),
                                            blend)
            else:
                res = pipe.edit(source.image, [quad], [truth.text], upscale="bilinear", seed=i, blend=blend)
                piece, bilinear_image = res.regions[0], np.asarray(res.image)
                saved.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(saved, crop=piece.crop, matrix=piece.matrix, feather_px=piece.feather_px)
            upscale = enlargement(piece.matrix)
            use_ref = pipe.cfg.style_ref and pipe.cfg.sample.use_style_ref
            outputs = {}
            for mode in modes:
                detail = partial(restore_detail, mode, has_ref=use_ref, refiner=refiner,
                                 upscale_min=pipe.cfg.sample.upscale_min if args.upscale_min is None
                                 else args.upscale_min)
                timed = []

                def timed_detail(*a, detail=detail):  # the detail step alone, timed inside the paste-back
                    t0 = time.perf_counter()
                    result = detail(*a)
                    timed.append(time.perf_counter() - t0)
                    return result

                out = paste_back(source.image, piece.crop, piece.matrix, quad, piece.feather_px, blend,
                                 detail=None if mode == "bilinear" else timed_detail)
                seconds = timed[0] if timed else 0.0
                if mode == "bilinear":
                    assert np.array_equal(out, bilinear_image), "the re-paste must equal the pipeline's"
                reading = recognizer.read([rectify_quad(out, quad)])[0]
                row = {"index": i, "mode": mode, "target": truth.text, "ocr": reading,
                       "seq_acc_ci": M.seq_acc(reading, truth.text), "upscale": upscale, "detail_seconds": seconds,
                       **score_pair(out, truth, quad)}
                f.write(json.dumps(row) + "\n")
                rows.append(row)
                outputs[mode] = out
            pictures.append((quad_height(quad), source.image, outputs, truth.image, quad))
            pictures = sorted(pictures, key=lambda p: -p[0])[:4]
            done = i + 1 - first
            if done % 10 == 0 or done == n:
                el = time.perf_counter() - t_start
                print(f"{done}/{n} pairs, {el / done:.1f} s a pair", file=sys.stderr, flush=True)
    summary = summarise(rows)
    summary["run"] = {"ckpt": args.ckpt or "shipped", "refiner": args.refiner or "shipped", "pairs": [first, last],
                      "blend": blend,
                      "from_crops": args.from_crops, "upscale_min": args.upscale_min,
                      "height_bucket_of": "measured word height (quad_height)", "sampling": "model default"}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "summary.md").write_text(table(summary))
    picture(pictures, out_dir / "tallest.png")
    print(table(summary))
    return summary


def summarise(rows: list[dict]) -> dict:
    """Per mode and bucket ("all" too): n, medians of the sharpness ratio and colour errors, means of SSIM and
    SeqAcc, median detail seconds."""
    from dreamtext.data.pairs import HEIGHT_BUCKETS

    buckets = ["all"] + [f"{lo}-{hi}" for lo, hi in HEIGHT_BUCKETS]
    out = {}
    for mode in MODES:
        out[mode] = {}
        for b in buckets:
            part = [r for r in rows if r["mode"] == mode and (b == "all" or r["height_bucket"] == b)]
            if not part:
                continue

            def med(key):
                vals = [r[key] for r in part if r.get(key) is not None and np.isfinite(r[key])]
                return float(statistics.median(vals)) if vals else float("nan")

            out[mode][b] = {"n": len(part), "sharpness_ratio": med("sharpness_ratio"),
                            "ssim_gt": float(np.mean([r["ssim_gt"] for r in part])),
                            "text_color_de": med("text_color_de"), "background_de": med("background_de"),
                            "seq_acc_ci": float(np.mean([r["seq_acc_ci"] for r in part])),
                            "detail_seconds": med("detail_seconds"), "upscale": med("upscale")}
    return out


def table(summary: dict) -> str:
    lines = ["| mode | bucket | n | enlargement (median) | sharpness ratio (median) | SSIM | text ΔE (median) | "
             "background ΔE (median) | SeqAcc ci | detail s / region (median) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode in MODES:
        for b, m in summary.get(mode, {}).items():
            lines.append(f"| {mode} | {b} | {m['n']} | {m['upscale']:.1f} | {m['sharpness_ratio']:.2f} | "
                         f"{m['ssim_gt']:.3f} | {m['text_color_de']:.1f} | {m['background_de']:.2f} | "
                         f"{100 * m['seq_acc_ci']:.1f} % | {m['detail_seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def picture(pictures, path: Path) -> None:
    """The tallest words at 100 %: source | each mode pasted | truth, one row each."""
    from PIL import Image

    from dreamtext.evaluation.metrics import quad_box
    from dreamtext.io_utils import atomic_save_image

    strips = []
    for _, source, outputs, truth, quad in pictures:
        rows, cols = quad_box(quad, source.shape[:2])
        panels = [source] + [outputs[m] for m in MODES if m in outputs] + [truth]
        crops = [p[rows, cols] for p in panels]
        gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
        strips.append(np.concatenate([x for c in crops for x in (c, gap)][:-1], 1))
    if not strips:
        return
    width = max(s.shape[1] for s in strips)
    padded = [np.pad(s, ((0, 6), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in strips]
    atomic_save_image(path, Image.fromarray(np.concatenate(padded, 0)))


def time_detail(args) -> dict:
    """Median seconds of each mode's detail step for one word ``h`` px tall and 5·h wide (its paste-back box: the
    feather band around it), h = 24, 48, 100, 150; the refiner is the shipped one (or --refiner)."""
    from dreamtext.config import load_config
    from dreamtext.edit.detail import restore_detail
    from dreamtext.model.refiner import load_refiner

    refiner = load_refiner(args.refiner)[0]
    feather = load_config("tiny").sample.feather
    rng = np.random.default_rng(0)
    out = {}
    for h in (24, 48, 100, 150):
        pad = int(round(feather * h)) + 2
        hw = (h + 2 * pad, 5 * h + 2 * pad)
        back = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        patch = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        region = np.zeros(hw, bool)
        region[pad:-pad, pad:-pad] = True
        for mode in MODES:
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                restore_detail(mode, back, patch, region, h / 16.0, True, refiner=refiner)
                times.append(time.perf_counter() - t0)
            out[f"{mode}@{h}px"] = {"box": list(hw), "median_s": float(statistics.median(times))}
            print(json.dumps({"mode": mode, "word_height_px": h, "box": list(hw),
                              "median_s": round(float(statistics.median(times)), 4)}), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "time.json").write_text(json.dumps(out, indent=2))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default=None, help="the model (default: the shipped one)")
    p.add_argument("--refiner", default=None, help="a train-refiner run or export (default: the shipped one)")
    p.add_argument("--start", type=int, default=0, help="the first pair (default 0)")
    p.add_argument("--from-crops", default=None, metavar="DIR",
                   help="no sampling: the base model's crops an earlier run saved in DIR/crops (another refiner or "
                        "--upscale-min on the very same samples)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=None,
                   help="the sample.upscale modes to paste with (default: all of them)")
    p.add_argument("--blend", default=None, help="the paste-back blend of every mode (default: the model's "
                                                  "sample.blend); the crops do not depend on it")
    p.add_argument("--upscale-min", type=float, default=None, help="enlargements up to this are left as they are "
                                                                     "(default: the model's sample.upscale_min)")
    p.add_argument("--limit", type=int, default=None, help="N pairs from --start (default: to the split's end)")
    p.add_argument("--summarise", nargs="+", default=None, metavar="DIR",
                   help="no sampling: one summary of these runs' rows.jsonl (e.g. two halves) into --out")
    p.add_argument("--time", action="store_true", help="no sampling: time each mode's detail step per word height")
    p.add_argument("--repeats", type=int, default=5, help="with --time: repeats per height (median)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.time:
        time_detail(args)
        return 0
    if args.summarise:
        rows = [json.loads(line) for d in args.summarise for line in (Path(d) / "rows.jsonl").read_text().splitlines()]
        summary = summarise(rows) | {"run": {"parts": args.summarise, "pairs": len({r["index"] for r in rows})}}
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
        (Path(args.out) / "summary.md").write_text(table(summary))
        print(table(summary))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
