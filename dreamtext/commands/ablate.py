"""``dreamtext ablate``: the supervision / loss-form ablation, trained and evaluated here (DESIGN §5)."""

from __future__ import annotations


def register(subparsers) -> None:
    from ..evaluation.ablate import DEFAULT_VARIANTS, VARIANTS

    p = subparsers.add_parser(
        "ablate", help="train one model per supervision mode / loss form and compare them on the benchmark",
        description="Train the preset for the same step budget under each variant, evaluate each on the "
                    "benchmark split, and write ablation.md (one comparison table) and ablation.json into --out. "
                    f"Variants: {', '.join(VARIANTS)}.")
    p.add_argument("--out", required=True, help="output directory (one sub-folder per variant)")
    p.add_argument("--steps", type=int, default=600, help="training steps per variant (default 600)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated (default {','.join(DEFAULT_VARIANTS)}); 'all' for every variant")
    p.add_argument("--preset", default="tiny", choices=["tiny", "test", "sd2"])
    p.add_argument("--k-gt", type=int, default=None,
                   help="ground-truth steps of 'balanced' (default: 25/175 of --steps, the paper's fraction)")
    p.add_argument("--task", choices=["recon", "edit", "style"], default="recon",
                   help="the evaluation task of every variant (style: the paired benchmark of the style reference)")
    p.add_argument("--data", default="bench", help="evaluation source (default bench)")
    p.add_argument("--eval-limit", type=int, default=200, help="evaluation samples per variant (0: all)")
    p.add_argument("--eval-steps", type=int, default=None, help="sampling steps of the evaluation")
    p.add_argument("--eval-workers", type=int, default=1, help="evaluation processes (see dreamtext eval --workers)")
    p.add_argument("--eval-batch", type=int, default=1, help="records sampled together (see dreamtext eval --batch)")
    p.add_argument("--eval-device", default="cpu", help="where the evaluation samples (see dreamtext eval --device)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every variant")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..evaluation.ablate import VARIANTS, AblationSettings, run_ablation

    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    settings = AblationSettings(preset=args.preset, steps=args.steps, variants=tuple(names), k_gt=args.k_gt,
                                overrides=list(args.set), seed=args.seed, task=args.task, eval_data=args.data,
                                eval_limit=args.eval_limit or None, eval_steps=args.eval_steps,
                                eval_workers=args.eval_workers, eval_batch=args.eval_batch, eval_device=args.eval_device)
    run_ablation(settings, args.out, progress=not args.no_progress)
    print((Path(args.out) / "ablation.md").read_text())
    return 0
