"""``dreamtext export``: a training run or checkpoint → a self-contained pipeline directory."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a checkpoint's (EMA) weights as a pipeline directory",
                       description="Load a run, checkpoint or pipeline directory (EMA weights when present) and "
                                   "write model.safetensors + config.json to OUT, which from_pretrained and "
                                   "--ckpt then read on their own.")
    p.add_argument("ckpt", help="run, checkpoint or pipeline directory")
    p.add_argument("--out", required=True,
                   help="the pipeline directory to write: new, empty, or an earlier export (replaced atomically); "
                        "a folder holding other files is refused unless --force")
    p.add_argument("--force", action="store_true",
                   help="write config.json, state.json and model.safetensors into a non-empty folder (its other "
                        "files are left alone; a training checkpoint is still refused)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA weights")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..edit.pipeline import DreamTextPipeline
    from ..model.checkpoint import export_mode, read_json, resolve_checkpoint

    export_mode(args.out, kind="pipeline", force=args.force)  # refuse before loading anything

    # Resolved once: a run still training may write a newer checkpoint between two lookups, and the
    # provenance must name the checkpoint whose weights were exported.
    ckpt = resolve_checkpoint(args.ckpt)
    pipe = DreamTextPipeline.from_pretrained(ckpt, use_ema=not args.no_ema)
    state = read_json(ckpt / "state.json")
    # Provenance travels with the weights: which checkpoint, how many steps and samples it had seen.
    source = {"checkpoint": str(ckpt.resolve()), "weights": "raw" if args.no_ema else "ema"}
    if state.get("kind") == "pipeline":
        source.update(state.get("source") or {})
    else:
        source.update(step=state.get("step"), samples_seen=(state.get("data") or {}).get("samples_seen"))
    out = pipe.save_pretrained(args.out, half=args.half, source=source, force=args.force)
    print(f"wrote {out} (preset {pipe.cfg.preset}, glyph_prior={pipe.cfg.glyph_prior}, step {source.get('step')})")
    return 0
