"""Pack GPU-run results for the trip back (files under 16 MiB, at most 8 of them).

    python3 tools/gpu/pack.py run RUN_DIR OUT        # newest checkpoint's EMA, fp32 → OUT/ema_<i>.safetensors,
                                                     # + OUT/run.tar.gz (its config/state, metrics, last samples)
    python3 tools/gpu/pack.py ablation ABL_DIR OUT   # each variant's newest EMA, fp16 → OUT/<variant>_ema_<i>.safetensors
"""
import sys
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file

SHARD_BYTES = 14 * 2**20


def newest_checkpoint(run: Path) -> Path | None:
    ckpts = [c for c in sorted((run / "checkpoints").glob("step_*")) if (c / "ema.safetensors").is_file()]
    return ckpts[-1] if ckpts else None


def save_shards(tensors: dict, out: Path, prefix: str) -> int:
    """``tensors`` split into files of at most SHARD_BYTES: OUT/<prefix>_<i>.safetensors; returns the count."""
    shards, current, size = [], {}, 0
    for name, t in tensors.items():
        if size + t.numel() * t.element_size() > SHARD_BYTES and current:
            shards.append(current)
            current, size = {}, 0
        current[name] = t.contiguous()
        size += t.numel() * t.element_size()
    shards.append(current)
    for i, shard in enumerate(shards):
        save_file(shard, str(out / f"{prefix}_{i}.safetensors"))
    return len(shards)


def pack_run(run: Path, out: Path) -> None:
    ck = newest_checkpoint(run)
    if ck is None:
        sys.exit(f"no checkpoint with EMA weights in {run}")
    n = save_shards(load_file(ck / "ema.safetensors"), out, "ema")
    with tarfile.open(out / "run.tar.gz", "w:gz") as tar:
        for name in ("config.json", "state.json"):
            tar.add(ck / name, arcname=f"{ck.name}/{name}")
        tar.add(run / "metrics.jsonl", arcname="metrics.jsonl")
        for p in sorted((run / "samples").glob("*.png"))[-3:]:
            tar.add(p, arcname=f"samples/{p.name}")
    print("packed", ck.name, n, "shards")


def pack_ablation(abl: Path, out: Path) -> None:
    for vdir in sorted(p for p in abl.iterdir() if (p / "run").is_dir()):
        ck = newest_checkpoint(vdir / "run")
        if ck is None:
            continue
        ema = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(ck / "ema.safetensors").items()}
        print("packed", vdir.name, ck.name, save_shards(ema, out, f"{vdir.name}_ema"), "shards")


if __name__ == "__main__":
    kind, src, dst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"run": pack_run, "ablation": pack_ablation}[kind](src, dst)
