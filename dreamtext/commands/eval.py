"""``dreamtext eval``: the published evaluation protocol on one data source (DESIGN §8)."""

from __future__ import annotations


def register(subparsers) -> None:
    from .options import add_sampling_options

    p = subparsers.add_parser(
        "eval", help="measure SeqAcc / NED / SSIM / PSNR / MSE / mask mIoU on a data source",
        description="Run the pipeline on every sample's word region (recon: the same word; edit: a fixed held-out "
                    "word of the same length; style: the paired benchmark, each source scene edited to its pair's "
                    "new word and compared with the ground-truth edit — colour, background, sharpness per word "
                    "height), read the result with OCR and write results.json, samples.csv and report.md into "
                    "--out. The OCR's accuracy on the untouched inputs is reported beside every result as the "
                    "ceiling.")
    p.add_argument("--data", default="bench",
                   help="data source: bench (fixed benchmark split, default), synth, shards:DIR, synthtext:PATH, "
                        "icdar13:DIR, textseg:DIR, laion_ocr:DIR")
    p.add_argument("--task", choices=["recon", "edit", "style"], default="recon",
                   help="recon (default), edit, or style (the paired split of 500 same-style pairs; --data unused)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    add_sampling_options(p, seed_help="sample i uses seed + i (default 0)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--ocr", default="rapidocr",
                   help="recogniser: rapidocr (default), parseq-onnx:PATH or python:MODULE:FACTORY")
    p.add_argument("--report-samples", type=int, default=8, help="rows in the best / worst picture grids")
    p.add_argument("--ceiling-only", action="store_true",
                   help="run no model: only measure the OCR on the untouched inputs (the ceiling of any score)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes, each with its own copy of the model, sharing the records (default 1; "
                        "the numbers do not depend on it)")
    p.add_argument("--batch", type=int, default=1,
                   help="records sampled together in one UNet batch (default 1); each keeps its own seed, so "
                        "the noise does not change, only float rounding can. Pays most on a GPU")
    p.add_argument("--device", default="cpu",
                   help="where the model samples: cpu (default), cuda or cuda:N; the initial noise is drawn on "
                        "the CPU, so seeds pick the same noise on either")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation.evaluate import EvalSettings, evaluate
    from ..evaluation.report import TABLE_ROWS, fmt

    settings = EvalSettings(data=args.data, task=args.task, ckpt=args.ckpt, limit=args.limit, seed=args.seed,
                            steps=args.steps, guidance=args.guidance, sampler=args.sampler,
                            restarts=args.restarts, blend=args.blend, mask_rule=args.mask_rule,
                            upscale=args.upscale, candidates=args.candidates, ocr=args.ocr,
                            report_samples=args.report_samples, ceiling_only=args.ceiling_only,
                            workers=args.workers, batch=args.batch, device=args.device, style_ref=args.style_ref)
    results = evaluate(settings, args.out, progress=not args.no_progress)
    m = results["metrics"]
    print(f"{results['task']} on {results['data']}: {results['n_samples']} samples "
          f"({results['n_skipped']} skipped), OCR {results['ocr']}")
    for key, label, how, ceiling_key in TABLE_ROWS:
        if key not in m and ceiling_key in m:  # a ceiling-only run
            print(f"  OCR on the inputs: {label:<34} {fmt(m[ceiling_key], how):>8}")
        elif key in m:
            # Text metrics sit beside the OCR's ceiling; the mask mIoU beside the letter-blind baseline.
            ref = "OCR ceiling" if ceiling_key and ceiling_key.startswith("ocr_ceiling") else "even slices"
            ceiling = f"   ({ref} {fmt(m[ceiling_key], how)})" if ceiling_key and ceiling_key in m else ""
            print(f"  {label:<34} {fmt(m[key], how):>8}{ceiling}")
    for bucket, b in (results.get("metrics_by_height") or {}).items():
        print(f"  words {bucket:>7} px (n={b['n']:3d}): SeqAcc {fmt(b.get('seq_acc_ci'), 'pct')}, text ΔE "
              f"{fmt(b.get('text_color_de_median'), 'f2')}, background ΔE {fmt(b.get('background_de_median'), 'f2')}, "
              f"sharpness {fmt(b.get('sharpness_ratio_median'), 'f2')}, SSIM vs truth {fmt(b.get('ssim_gt'), 'f3')}")
    print(f"wrote {args.out}/results.json, samples.csv, report.md")
    return 0
