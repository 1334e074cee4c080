"""``dreamtext train``: train the diffusion model (DESIGN §4, §5); the same command under accelerate/torchrun."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the DreamText diffusion model (accelerate: one CPU, one GPU or many)",
        description="Train a DreamText model. Settings come from a preset, then an optional YAML file, then "
                    "key=value overrides (e.g. train.max_steps=2000 loss.supervision=gt). Run it under "
                    "`accelerate launch` or `torchrun --nproc_per_node N` for several processes/GPUs.",
    )
    p.add_argument("--preset", default="tiny", help="tiny (default), sd2 or test")
    p.add_argument("config", nargs="?", default=None, help="optional YAML config file applied over the preset")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides, e.g. train.out_dir=runs/a")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in train.out_dir (starts fresh if there is none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..config import load_config
    from ..train.trainer import train
    from .pretrain import _split_config_arg

    yaml_path, overrides = _split_config_arg(args.config, args.overrides)
    cfg = load_config(args.preset, yaml_path, overrides)
    from ..evaluation.probe import probe_model

    summary = train(cfg, resume=args.resume, progress=not args.no_progress, probe=probe_model)
    if summary.get("is_main", True):
        shown = {k: v for k, v in summary.items() if k not in ("first_batch_texts",)}
        print(json.dumps(shown, indent=2))
    return 0 if summary["stopped"] == "finished" else 130
