"""``dreamtext train-refiner``: train the detail refiner that gives enlarged regions the photo's own sharpness."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-refiner",
        help="train the detail refiner (a small convolutional net) that sharpens regions larger than the model's window",
        description="Train dreamtext.model.refiner's DetailRefiner on the generator's same-style pairs at word "
                    "heights of 16-170 px: the ground truth's model window, enlarged as the paste-back enlarges it, "
                    "against the ground truth at full resolution. Checkpoints go to OUT/checkpoints; --resume "
                    "continues a killed run. At the end it scores held-out pairs of the paired benchmark. "
                    "--export DIR then writes the weights alone (e.g. dreamtext/assets/refiner).",
    )
    p.add_argument("--preset", default="tiny", help="config preset (the refiner reads its image_size; default tiny)")
    p.add_argument("config", nargs="?", default=None, help="optional YAML config file applied over the preset")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides, e.g. refiner.steps=500")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--export", default=None, metavar="DIR", help="after training, write the weights and config to DIR")
    p.add_argument("--force", action="store_true",
                   help="let --export write its three files into a folder holding other files (left alone)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..config import load_config
    from ..train.refiner_train import export_refiner, train_refiner
    from .pretrain import _split_config_arg

    if args.export:  # checked before training, not after it
        from ..model.checkpoint import export_mode

        export_mode(args.export, kind="refiner", force=args.force)
    yaml_path, overrides = _split_config_arg(args.config, args.overrides)
    cfg = load_config(args.preset, yaml_path, overrides)
    summary = train_refiner(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    if summary["stopped"]:
        print(f"stopped ({summary['stopped']}) at step {summary['step']}; continue with --resume")
        return 130
    print(f"held-out pairs ({summary['eval_pairs']}): pixel L1 {summary['eval_l1_bilinear']:.4f} bilinear → "
          f"{summary['eval_l1_refined']:.4f} refined, gradient L1 {summary['eval_grad_bilinear']:.4f} → "
          f"{summary['eval_grad_refined']:.4f}; checkpoints in {args.out}/checkpoints")
    if args.export:
        print(f"exported to {export_refiner(args.out, args.export, force=args.force)}")
    return 0
