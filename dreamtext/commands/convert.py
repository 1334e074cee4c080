"""``dreamtext convert``: the paper's released DreamText bundle or a UDiffText checkpoint → a model directory."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="convert the released DreamText / UDiffText weights into a model directory",
        description="Read the released DreamText bundle (the folder holding checkpoints/pre_trained.ckpt, "
                    "checkpoints/AEs/, checkpoints/encoders/) or one UDiffText checkpoint "
                    "(st-step=100000+la-step=100000-v1.ckpt, ...) without running any code stored in it, and "
                    "write OUT: config.json, model.safetensors and state.json (the source files and their "
                    "sha256), which --ckpt and DreamTextPipeline.from_pretrained read. The model samples as the "
                    "release does (euler-edm, 50 steps, CFG 5); --sampler, --steps and --guidance still choose "
                    "at edit time. See docs/released-weights.md.")
    p.add_argument("source", help="the DreamText bundle folder, or a UDiffText .ckpt file")
    p.add_argument("--out", required=True,
                   help="the model directory to write: new, empty, or an earlier conversion or export (replaced "
                        "atomically); a folder holding other files is refused unless --force")
    p.add_argument("--force", action="store_true",
                   help="write config.json, state.json and model.safetensors into a non-empty folder (its other "
                        "files are left alone; a training checkpoint is still refused)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="settings the weights do not carry, e.g. text.heads=8 unet.head_channels=64 (the "
                        "release's, the defaults) or image_size=[512,512]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model.convert_released import convert_release

    conv = convert_release(args.source, args.out, force=args.force, half=args.half, overrides=args.overrides)
    cfg, millions = conv.cfg, {k: v / 1e6 for k, v in conv.params.items()}
    print(f"wrote {conv.out} from the {conv.kind} {args.source}")
    print(f"  UNet {millions['unet']:.1f}M parameters (widths {list(cfg.unet.block_out_channels)}), text encoder "
          f"{millions['text_encoder']:.1f}M ({cfg.text.layers} layers × {cfg.text.dim}), VAE {millions['vae']:.1f}M")
    for name, info in conv.files.items():
        digest = info.get("sha256", "")[:12]
        print(f"  {name}: {', '.join(info['parts'])}{'  sha256 ' + digest + '…' if digest else ''}")
    if conv.dropped:
        print("  dropped (no counterpart in this model): "
              + "; ".join(f"{k} ({n} tensors)" for k, n in conv.dropped.items()))
    print(f"  fresh (seeded; used by training losses only): {', '.join(conv.fresh)}")
    s = cfg.sample
    print(f"  sampling: {s.sampler}, {s.steps} steps, CFG {s.guidance:g}, {cfg.image_size[0]}×{cfg.image_size[1]}")
    return 0
