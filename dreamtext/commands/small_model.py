"""What the two helper-network training commands share (``train-verifier``, ``train-refiner``): their options and
their run — train, report, and export the weights alone."""

from __future__ import annotations


def add_small_model_parser(subparsers, name: str, help: str, description: str, example: str, run):
    """The parser of ``dreamtext <name>``: preset, YAML, key=value overrides, --out, --resume, --export, --force."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("--preset", default="tiny", help="config preset (the network reads its image_size; default tiny)")
    p.add_argument("config", nargs="?", default=None, help="optional YAML config file applied over the preset")
    p.add_argument("overrides", nargs="*", default=[], help=f"key=value overrides, e.g. {example}")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--export", default=None, metavar="DIR", help="after training, write the weights and config to DIR")
    p.add_argument("--force", action="store_true",
                   help="let --export write its three files into a folder holding other files (left alone)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run_small_model(args, kind: str, train, export, report) -> int:
    """Train (``train(cfg, out, resume=, progress=) -> summary``), print the summary and ``report(summary)``, then
    export (``export(run, dest, force=)``); the export target is checked before any training."""
    import json

    from ..config import load_config
    from .pretrain import _split_config_arg

    if args.export:
        from ..model.checkpoint import export_mode

        export_mode(args.export, kind=kind, force=args.force)
    yaml_path, overrides = _split_config_arg(args.config, args.overrides)
    cfg = load_config(args.preset, yaml_path, overrides)
    summary = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    if summary["stopped"]:
        print(f"stopped ({summary['stopped']}) at step {summary['step']}; continue with --resume")
        return 130
    print(f"{report(summary)}; checkpoints in {args.out}/checkpoints")
    if args.export:
        print(f"exported to {export(args.out, args.export, force=args.force)}")
    return 0
