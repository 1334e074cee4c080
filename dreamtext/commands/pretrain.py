"""``dreamtext pretrain-encoder``: pre-train the text encoder ψ/ξ on words rendered in many fonts (DESIGN §2)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain-encoder",
        help="pre-train the character text encoder (InfoNCE + 0.1·CE_cls + 0.1·CE_pos)",
        description="Pre-train the text encoder ψ and the visual encoder ξ on words rendered in many fonts; "
                    "prints the text→image top-1 retrieval accuracy and writes a safetensors file that "
                    "`dreamtext train train.encoder_ckpt=PATH` loads.",
    )
    p.add_argument("--preset", default="tiny", help="config preset whose text.* settings to use (default: tiny)")
    p.add_argument("config", nargs="?", default=None, help="optional YAML config file applied over the preset")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides, e.g. pretrain.steps=500")
    p.add_argument("--out", default=None, help="output .safetensors (default: pretrain.out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..config import load_config
    from ..train.pretrain import pretrain_encoder

    yaml_path, overrides = _split_config_arg(args.config, args.overrides)
    cfg = load_config(args.preset, yaml_path, overrides)
    summary = pretrain_encoder(cfg, out=args.out, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    print(f"text→image top-1 retrieval over batches of {cfg.pretrain.batch_size}: "
          f"{summary['eval_retrieval_acc']:.3f} (chance {summary['chance']:.3f}); saved {summary['out']}")
    return 0


def _split_config_arg(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """argparse cannot tell an optional YAML path from a first ``key=value``: a token with ``=`` is an override."""
    if config is not None and "=" in config:
        return None, [config, *overrides]
    return config, list(overrides)
