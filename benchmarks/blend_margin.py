"""``blend="auto"``'s margin (issue 26): every margin at once, on the edit task and on the paired split.

    # sample once (both cores: two shards), then one table for any margins:
    for i in 0 1; do OMP_NUM_THREADS=1 .venv/bin/python benchmarks/blend_margin.py sample --task edit \\
        --shard $i/2 --out runs/bench/margin-edit & done; wait
    .venv/bin/python benchmarks/blend_margin.py summarise --out runs/bench/margin-edit

``auto`` pastes each region feathered and recoloured and keeps recolor unless the word verifier reads the new
word in it more than ``sample.blend_margin`` nats per character worse (``candidates.paste_auto``). Its choice is a
threshold on one number per region, d = score(feathered) − score(recoloured), so one sampling pass scores every
margin: each record is edited as ``dreamtext eval --task edit|style`` edits it (record i seeded i, the model's
default sampling with the style reference and ``blend="auto"``), both pastes are rebuilt from its crop with the
model's detail step (the one the pipeline kept must equal its output: checked), and the evaluation's OCR reads
each; the style task also scores each against the ground-truth edit (``style_eval.score_pair``). The summary
gives, per margin, the share recoloured, SeqAcc (and the style task's colour, background, SSIM), and the sign test
of the words against always feathering and against the shipped margin. Margin −inf is feather, +inf recolor.
``--also inpaint`` pastes and scores another blend from the same crops (one more row, "always inpaint").

Rows append to ``OUT/rows.<shard>.jsonl`` as they are made, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

# A row's keys that are not a blend's scores.
ROW_KEYS = ("index", "target", "scores", "blend", "feather", "recolor")
MARGINS = (-math.inf, -0.05, -0.02, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, math.inf)


def sample(args) -> None:
    from dreamtext.edit.candidates import blend_scores, window_views
    from dreamtext.edit.detail import restore_detail
    from dreamtext.edit.paste import paste_back_blends
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.errors import DreamTextError
    from dreamtext.evaluation import metrics as M
    from dreamtext.evaluation.ocr import make_recognizer, rectify_quad
    from dreamtext.evaluation.protocol import EvalSettings, open_records, target_text
    from dreamtext.evaluation.style_eval import score_pair

    part, parts = (int(v) for v in args.shard.split("/"))
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    cfg = pipe.cfg
    if not cfg.style_ref:
        raise SystemExit("this model has no style reference: blend=auto always feathers with it")
    settings = EvalSettings(task=args.task, ckpt=args.ckpt, limit=args.limit)
    source, total = open_records(settings, cfg)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_path = out_dir / f"rows.{part}.jsonl"
    done = {json.loads(line)["index"] for line in rows_path.read_text().splitlines()} if rows_path.exists() else set()
    ocr = make_recognizer("rapidocr")
    detail = None if cfg.sample.upscale == "bilinear" else partial(
        restore_detail, cfg.sample.upscale, has_ref=True, upscale_min=cfg.sample.upscale_min,
        refiner=pipe.refiner if cfg.sample.upscale == "refiner" else None)
    blends = ("feather", "recolor", *(b for b in args.also if b not in ("feather", "recolor")))
    todo = [(i, rec) for i, rec in zip(range(part, total, parts), source.iter_part(part, parts)) if i not in done]
    t0, n_done = time.perf_counter(), 0
    with open(rows_path, "a") as f:
        for first in range(0, len(todo), args.batch):
            chunk = todo[first:first + args.batch]
            truths = {i: source.target(i) for i, _ in chunk} if args.task == "style" else {}
            targets = [truths[i].text if truths else target_text(rec, i, args.task) for i, rec in chunk]
            try:
                results = pipe.edit_many([(rec.image, [rec.word_quad], [t]) for (_, rec), t in zip(chunk, targets)],
                                         seeds=[i for i, _ in chunk], blend="auto", style_ref=True)
            except DreamTextError as e:
                print(f"records {chunk[0][0]}..: skipped ({e})", file=sys.stderr)
                continue
            for (i, rec), target, result in zip(chunk, targets, results):
                region = result.regions[0]
                if region.chunks is not None:  # a chunked word: one score per chunk, not one threshold
                    continue
                pastes = paste_back_blends(result.input, region.crop, region.matrix, region.quad, region.feather_px,
                                           blends, detail=detail)
                kept = pastes[1] if region.blend == "recolor" else pastes[0]
                assert np.array_equal(kept, np.asarray(result.image)), "the re-paste must equal the pipeline's"
                row = {"index": i, "target": target, "scores": list(region.blend_scores), "blend": region.blend}
                verifier = blend_scores(pipe.verifier, cfg.max_len,
                                        *window_views(pastes, region.matrix, region.quad, cfg.image_size), target)
                assert np.allclose(verifier[:2], region.blend_scores, atol=1e-4), "auto's scores, rebuilt"
                for name, image, score in zip(blends, pastes, verifier):
                    reading = ocr.read([rectify_quad(image, region.quad)])[0]
                    row[name] = {"ocr": reading, "seq_acc_ci": M.seq_acc(reading, target), "verifier": float(score),
                                 **(score_pair(image, truths[i], region.quad) if truths else {})}
                f.write(json.dumps(row) + "\n")
                f.flush()
                n_done += 1
            el = time.perf_counter() - t0
            print(f"shard {part}/{parts}: {len(done) + n_done}/{len(range(part, total, parts))} records, "
                  f"{el / max(n_done, 1):.1f} s a record", file=sys.stderr, flush=True)


def choose(row: dict, margin: float, order: tuple[str, ...] = ("recolor",)) -> str:
    """The blend a policy keeps at ``margin``: the first of ``order`` that the verifier reads no more than
    ``margin`` nats a character worse than the feathered paste, else feather. ``order=("recolor",)`` is
    ``blend="auto"`` (``candidates.paste_auto``'s rule, on the scores the pipeline recorded)."""
    from dreamtext.edit.candidates import keeps_recolor

    if order == ("recolor",):  # the edit task's rows of stop 35 carry only these two scores
        return "recolor" if keeps_recolor(row["scores"], margin) else "feather"
    feather = row["feather"]["verifier"]
    return next((b for b in order if keeps_recolor((feather, row[b]["verifier"]), margin)), "feather")


def summarise(args) -> str:
    from dreamtext.data.pairs import HEIGHT_BUCKETS
    from dreamtext.evaluation.compare import sign_test

    rows = [json.loads(line) for p in sorted(Path(args.out).glob("rows.*.jsonl")) for line in p.read_text().splitlines()]
    rows.sort(key=lambda r: r["index"])
    if not rows:
        raise SystemExit(f"no rows in {args.out} (run the sample stage first)")
    style = "text_color_de" in rows[0]["feather"]
    extra = [b for b in rows[0] if b not in ROW_KEYS]  # blends scored beside auto's two (--also)
    buckets = [f"{lo}-{hi}" for lo, hi in HEIGHT_BUCKETS]

    def right(picks):
        return np.array([r[b]["seq_acc_ci"] for r, b in zip(rows, picks)], bool)

    feather_right = right(["feather"] * len(rows))
    shipped_right = right([choose(r, args.shipped) for r in rows])
    head = ("| policy | margin | share not feathered | SeqAcc ci | vs feather (right only here / only feathered), p "
            f"| vs auto at {args.shipped} |" + (" text ΔE (median) | background ΔE (median) | SSIM | sharpness (median; "
                                  f"{' / '.join(buckets)} px) |" if style else ""))
    lines = [f"{len(rows)} records ({rows[0]['index']}-{rows[-1]['index']}); d = verifier score of the feathered "
             "paste − the recoloured's (nats/char), median "
             f"{statistics.median(r['scores'][0] - r['scores'][1] for r in rows):.3f}", "", head,
             "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: | ---: | --- |" if style else "")]

    def line(policy: str, margin: str, picks: list[str]) -> str:
        got = right(picks)
        b, w = int((got & ~feather_right).sum()), int((~got & feather_right).sum())
        bs, ws = int((got & ~shipped_right).sum()), int((~got & shipped_right).sum())
        out = (f"| {policy} | {margin} | {100 * np.mean([p != 'feather' for p in picks]):.0f} % | "
               f"{100 * got.mean():.1f} % | {b} / {w}, {sign_test(b, w):.2g} | {bs} / {ws}, {sign_test(bs, ws):.2g} |")
        if style:
            picked = [r[p] for r, p in zip(rows, picks)]
            med = [statistics.median(p[k] for p in picked if p.get(k) is not None and math.isfinite(p[k]))
                   for k in ("text_color_de", "background_de")]
            sharp = [[p["sharpness_ratio"] for p in picked if p["height_bucket"] == bucket
                      and math.isfinite(p["sharpness_ratio"])] for bucket in buckets]
            out += (f" {med[0]:.2f} | {med[1]:.2f} | {np.mean([p['ssim_gt'] for p in picked]):.3f} | "
                    f"{' / '.join(f'{statistics.median(v):.2f}' if v else '–' for v in sharp)} |")
        return out

    policies = [("auto: recolor, else feather", ("recolor",))]
    policies += [(f"{b}, else recolor, else feather", (b, "recolor")) for b in extra]
    policies += [(f"{b}, else feather", (b,)) for b in extra]
    for name, order in policies:
        for margin in sorted(set(args.margins) | {args.shipped}):
            lines.append(line(name, f"{margin:g}", [choose(r, margin, order) for r in rows]))
    for blend in extra:
        lines.append(line(f"always {blend}", "–", [blend] * len(rows)))
    text = "\n".join(lines) + "\n"
    (Path(args.out) / "summary.md").write_text(text)
    print(text)
    return text


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    s = sub.add_parser("sample", help="edit every record once and score both pastes")
    s.add_argument("--task", choices=("edit", "style"), default="edit")
    s.add_argument("--ckpt", default=None, help="the model (default: the shipped one)")
    s.add_argument("--limit", type=int, default=None, help="the first N records (default: the whole split)")
    s.add_argument("--batch", type=int, default=4, help="records sampled together (each keeps its own seed)")
    s.add_argument("--shard", default="0/1", help="i/n: records i, i + n, ... (one process each)")
    s.add_argument("--also", nargs="*", default=[], choices=("poisson", "inpaint"),
                   help="other blends to paste and score beside auto's two (a row 'always BLEND' in the summary)")
    s.add_argument("--out", required=True)
    m = sub.add_parser("summarise", help="one table of every margin from the rows")
    m.add_argument("--out", required=True)
    m.add_argument("--margins", type=float, nargs="+", default=list(MARGINS))
    m.add_argument("--shipped", type=float, default=0.05, help="the margin to compare with (v7 ships 0.05)")
    args = ap.parse_args(argv)
    sample(args) if args.stage == "sample" else summarise(args)


if __name__ == "__main__":
    main()
