"""``dreamtext train-verifier``: train the word verifier that picks the best of ``--candidates`` samples."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train-verifier",
        help="train the word verifier (a small CTC recogniser) that chooses among sampled candidates",
        description="Train the CTC word verifier of dreamtext.verifier on the data engine's crops (the model's "
                    "image_size, the region mask beside the crop). Checkpoints go to OUT/checkpoints; --resume "
                    "continues a killed run. At the end it reads the bench split's ground-truth crops and prints "
                    "its accuracy. --export DIR then writes the weights alone (e.g. dreamtext/assets/verifier).",
    )
    p.add_argument("--preset", default="tiny", help="config preset (the verifier reads its image_size; default tiny)")
    p.add_argument("config", nargs="?", default=None, help="optional YAML config file applied over the preset")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides, e.g. verifier.steps=500")
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
    from ..train.verifier_train import export_verifier, train_verifier
    from .pretrain import _split_config_arg

    if args.export:  # checked before training, not after it
        from ..model.checkpoint import export_mode

        export_mode(args.export, kind="verifier", force=args.force)
    yaml_path, overrides = _split_config_arg(args.config, args.overrides)
    cfg = load_config(args.preset, yaml_path, overrides)
    summary = train_verifier(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    if summary["stopped"]:
        print(f"stopped ({summary['stopped']}) at step {summary['step']}; continue with --resume")
        return 130
    print(f"reads {summary['bench_acc_ci']:.1%} of {summary['bench_records']} bench ground-truth crops "
          f"(case-insensitive); checkpoints in {args.out}/checkpoints")
    if args.export:
        print(f"exported to {export_verifier(args.out, args.export, force=args.force)}")
    return 0
