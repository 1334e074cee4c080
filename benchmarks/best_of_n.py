"""Best of N with the word verifier: how much do extra candidates buy, and how close is the verifier to an oracle?

    # 1. sample K candidates per record once, read every one with the OCR (slow; cached):
    .venv/bin/python benchmarks/best_of_n.py sample --candidates 8 --limit 96 --cache runs/bon/recon.npz
    # 2. score the cached candidates with a verifier and print the table (seconds; repeatable per verifier):
    .venv/bin/python benchmarks/best_of_n.py score --cache runs/bon/recon.npz [more.npz ...] [--verifier DIR]

Stage 1 runs the pipeline on the first N records of the ``bench`` split as ``dreamtext eval`` does (record
i seeded i, ``--task`` recon or edit, the model's default sampling), with ``candidates=K``; every candidate
is pasted back (the model's blend) and read by the evaluation's OCR exactly as ``dreamtext eval`` reads its
output, so candidate 0 is the one-sample evaluation. ``--shard i/n`` splits the records over n processes
(each writes ``CACHE`` with ``.i`` before the suffix; ``score`` takes them all).

Stage 2 scores every cached crop with the verifier and reports, for k = 1, 2, 4, ... K: SeqAcc
(case-insensitive) when the verifier picks among the first k candidates, when an oracle that knows the
OCR's verdict picks (the ceiling of any verifier), and the paired sign test of the verifier's pick
against candidate 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _shard_path(cache: Path, shard: tuple[int, int]) -> Path:
    return cache if shard[1] == 1 else cache.with_suffix(f".{shard[0]}{cache.suffix}")


def sample(args) -> None:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from dreamtext.data.geometry import apply_matrix, fill_quad
    from dreamtext.data.sources import open_source
    from dreamtext.edit.paste import paste_back
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.evaluate import target_text
    from dreamtext.evaluation.ocr import make_recognizer, rectify_quad

    if args.threads:
        torch.set_num_threads(args.threads)
    part, parts = (int(v) for v in args.shard.split("/"))
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    if args.verifier:
        pipe.cfg = pipe.cfg.override({"sample.verifier": args.verifier})
    cfg = pipe.cfg
    ocr = make_recognizer("rapidocr")
    source = open_source("bench", cfg, split="bench", seed=0)
    indices = list(range(args.first + part, min(args.first + args.limit, len(source)), parts))
    crops, masks, rows = [], [], []
    for first in tqdm(range(0, len(indices), args.batch), desc=f"best-of-{args.candidates} {part}/{parts}",
                      unit="batch"):
        chunk = [(i, source.load(i) if hasattr(source, "load") else source.generator.sample(i))
                 for i in indices[first:first + args.batch]]
        jobs = [(rec.image, [rec.word_quad], [target_text(rec, i, args.task)]) for i, rec in chunk]
        results = pipe.edit_many(jobs, candidates=args.candidates, seeds=[i for i, _ in chunk])
        for (i, rec), (_, _, (target,)), result in zip(chunk, jobs, results):
            region = result.regions[0]
            readings = []
            for crop in region.candidate_crops:  # each pasted and read as `dreamtext eval` reads its output
                out = paste_back(result.input, crop, region.matrix, region.quad, region.feather_px, cfg.sample.blend)
                readings.append(ocr.read([rectify_quad(out, region.quad)])[0])
            crops.append(region.candidate_crops)
            masks.append(fill_quad(apply_matrix(region.matrix, region.quad), tuple(cfg.image_size)) > 0)
            rows.append({"index": i, "target": target, "readings": readings,
                         "ceiling": ocr.read([rectify_quad(rec.image, rec.word_quad)])[0]})
    out = _shard_path(Path(args.cache), (part, parts))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, crops=np.stack(crops), masks=np.stack(masks),
                        rows=np.array(json.dumps({"task": args.task, "ckpt": args.ckpt, "rows": rows})))
    print(f"wrote {out}: {len(rows)} records × {args.candidates} candidates")


def _load(cache: Path):
    import numpy as np

    files = [cache] if cache.is_file() else sorted(cache.parent.glob(f"{cache.stem}.*{cache.suffix}"))
    if not files:
        raise SystemExit(f"no cache {cache} (run the sample stage first)")
    crops, masks, rows, meta = [], [], [], None
    for f in files:
        with np.load(f) as z:
            crops.append(z["crops"])
            masks.append(z["masks"])
            meta = json.loads(str(z["rows"]))
            rows += meta["rows"]
    order = np.argsort([r["index"] for r in rows])
    return (np.concatenate(crops)[order], np.concatenate(masks)[order], [rows[k] for k in order], meta["task"])


def score(args) -> None:
    import numpy as np

    from dreamtext.evaluation.compare import sign_test
    from dreamtext.evaluation.metrics import ned
    from dreamtext.model.verifier import load_verifier, score_crops

    loaded = [_load(Path(c)) for c in args.cache]  # several caches (e.g. records 0-63 and 64-127) are one table
    k_common = min(x[0].shape[1] for x in loaded)  # caches of different K: the first k_common candidates of each
    crops, masks = np.concatenate([x[0][:, :k_common] for x in loaded]), np.concatenate([x[1] for x in loaded])
    rows = [{**r, "readings": r["readings"][:k_common]} for x in loaded for r in x[2]]
    task = loaded[0][3]
    n, k_max = crops.shape[:2]
    verifier, vcfg = load_verifier(args.verifier)
    right = np.array([[r.lower() == row["target"].lower() for r in row["readings"]] for row in rows])  # (n, K)
    neds = np.array([[ned(r, row["target"]) for r in row["readings"]] for row in rows])  # (n, K), case-insensitive
    logp = np.zeros((n, k_max))
    for c in range(k_max):
        for first in range(0, n, 64):
            part = slice(first, first + 64)
            logp[part, c] = score_crops(verifier, crops[part, c], masks[part],
                                        [row["target"] for row in rows[part]], vcfg.max_len).logp_per_char
    ceiling = np.mean([row["ceiling"].lower() == row["target"].lower() for row in rows]) if task == "recon" else None
    print(f"{task}, {n} bench records ({rows[0]['index']}-{rows[-1]['index']}), {k_max} candidates each; OCR ceiling "
          f"{'%.1f %%' % (100 * ceiling) if ceiling is not None else '-'}; verifier {args.verifier or 'shipped'}")
    print("| candidates k | SeqAcc ci, verifier picks | NED, verifier picks | SeqAcc ci, oracle picks | verifier vs "
          "candidate 0 (right only with the pick / only with 0) | sign test p |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    k = 1
    while k <= k_max:
        pick = logp[:, :k].argmax(1)
        chosen = right[np.arange(n), pick]
        better, worse = int((chosen & ~right[:, 0]).sum()), int((~chosen & right[:, 0]).sum())
        print(f"| {k} | {100 * chosen.mean():.1f} % | {neds[np.arange(n), pick].mean():.3f} | "
              f"{100 * right[:, :k].any(1).mean():.1f} % | "
              f"{better} / {worse} | {sign_test(better, worse):.2g} |")
        k *= 2
    if args.picture:
        _picture(args.picture, crops, rows, right, logp, args.picture_rows)
    agree = np.mean([logp[i].argmax() == 0 for i in range(n)])
    print(f"each candidate alone: SeqAcc {100 * right.mean():.1f} % (mean over the K); the verifier keeps "
          f"candidate 0 in {100 * agree:.0f} % of records")


def _picture(path: str, crops, rows, right, logp, n_rows: int) -> None:
    """One row per record: its candidates, each captioned with the OCR's reading (✓/✗) and the verifier's score;
    the verifier's pick framed in blue."""
    import numpy as np
    from PIL import Image

    from dreamtext.visualize import image_grid

    grid, captions = [], []
    for i in range(min(n_rows, len(rows))):
        pick = int(logp[i].argmax())
        cells = []
        for c, crop in enumerate(crops[i]):
            cell = np.pad(crop, ((3, 3), (3, 3), (0, 0)), constant_values=255)
            if c == pick:
                cell[:3], cell[-3:], cell[:, :3], cell[:, -3:] = (40, 90, 220), (40, 90, 220), (40, 90, 220), (40, 90, 220)
            cells.append(np.asarray(Image.fromarray(cell).resize((cell.shape[1] * 2, cell.shape[0] * 2),
                                                                  Image.NEAREST)))
        grid.append(cells)
        captions.append([f"{'ok' if right[i, c] else 'no'} {rows[i]['readings'][c]!r} {logp[i, c]:.2f}"
                         for c in range(len(cells))])
        captions[-1][0] = f"{rows[i]['target']}: " + captions[-1][0]
    Image.fromarray(image_grid(grid, captions=captions)).save(path)
    print(f"wrote {path}: {len(grid)} records; blue frame = the verifier's pick, caption = OCR reading (ok/no) and "
          "verifier log p per character")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    s = sub.add_parser("sample", help="sample and read K candidates per record (cached)")
    s.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    s.add_argument("--verifier", default=None, help="verifier directory used while sampling (scores are redone)")
    s.add_argument("--task", choices=["recon", "edit"], default="recon")
    s.add_argument("--candidates", type=int, default=8)
    s.add_argument("--limit", type=int, default=96)
    s.add_argument("--first", type=int, default=0, help="start at this record (e.g. 64 to extend a run of --limit 64)")
    s.add_argument("--batch", type=int, default=2, help="records per sampling batch (each K candidates)")
    s.add_argument("--shard", default="0/1", help="i/n: this process takes records i, i+n, ...")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    s.add_argument("--cache", required=True)
    s.set_defaults(func=sample)
    c = sub.add_parser("score", help="score cached candidates with a verifier; print the table")
    c.add_argument("--cache", required=True, nargs="+")
    c.add_argument("--verifier", default=None, help="verifier directory (default: the shipped one)")
    c.add_argument("--picture", default=None, help="also draw the candidates of the first records to this image")
    c.add_argument("--picture-rows", type=int, default=10)
    c.set_defaults(func=score)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
