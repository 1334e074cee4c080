"""What the training step keeps for its backward pass, per sample, and which layers keep it.

    .venv/bin/python benchmarks/saved_activations.py [--preset tiny] [--batch 8] [--top 12]

One forward pass of DreamText's full objective (``TrainingObjective(full=True)``, what ``dreamtext train``
runs: attention capture, §3 masks, every §4 loss) on one batch of real synthetic samples, float32, with a
``torch.autograd.graph.saved_tensors_hooks`` pack hook that records every tensor autograd saves, counted
once per storage, and charges it to the innermost module running when it was saved ("(objective)": the
losses and masks outside the modules). On a GPU this memory bounds the batch (106 MiB per sample measured on
an H100, BENCHMARKS.md "Training throughput") and, read and written again in the backward pass, much of the
step's time. Prints a Markdown table: MiB per sample by layer kind (the last part of the module's name),
then the largest single modules.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import _config  # noqa: E402


def saved_bytes_by_module(objective, batch: dict) -> collections.Counter:
    """{innermost module name: bytes} of the tensors saved for backward by one forward of ``objective``."""
    stack = ["(objective)"]

    def enter(name):
        def hook(module, args) -> None:
            stack.append(name)
        return hook

    def leave(module, args, output) -> None:  # None: a forward hook's return value would replace the output
        stack.pop()

    hooks = []
    for name, module in objective.model.named_modules():
        if name:
            hooks.append(module.register_forward_pre_hook(enter(name)))
            hooks.append(module.register_forward_hook(leave))
    seen, charged = set(), collections.Counter()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:  # views and re-saves of one storage count once
            seen.add(storage.data_ptr())
            charged[stack[-1]] += storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            objective(batch, 0, torch.Generator().manual_seed(0))
    finally:
        for h in hooks:
            h.remove()
    return charged


def layer_kind(module_name: str) -> str:
    """``unet.down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0`` → ``ff.net.0`` (what the layer is)."""
    parts = module_name.split(".")
    tail = [p for p in parts[-3:] if not p.isdigit()]
    return ".".join(parts[-3:]) if parts[-1].isdigit() and len(tail) >= 2 else parts[-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--top", type=int, default=12, help="rows of each table")
    args = ap.parse_args(argv)

    import tempfile

    from dreamtext.model.network import DreamTextModel
    from dreamtext.train.losses import TrainingObjective
    from dreamtext.train.utils import step_batches

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(args.preset, args.batch, tmp, ("train.bf16=false",))
    torch.manual_seed(0)
    objective = TrainingObjective(DreamTextModel(cfg), cfg, full=True).train()
    batch = next(step_batches(cfg, 0, 1, cfg.train.seed))
    charged = saved_bytes_by_module(objective, batch)
    per_sample = 2**20 * args.batch
    total = sum(charged.values())
    print(f"{args.preset}, batch {args.batch}, float32: {total / per_sample:.1f} MiB saved per sample\n")
    kinds = collections.Counter()
    for name, nbytes in charged.items():
        kinds[layer_kind(name)] += nbytes
    print("| layer kind | MiB / sample | share |\n| --- | ---: | ---: |")
    for kind, nbytes in kinds.most_common(args.top):
        print(f"| `{kind}` | {nbytes / per_sample:.2f} | {nbytes / total:.0%} |")
    print("\n| module | MiB / sample |\n| --- | ---: |")
    for name, nbytes in charged.most_common(args.top):
        print(f"| `{name}` | {nbytes / per_sample:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
