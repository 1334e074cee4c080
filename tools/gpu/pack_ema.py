"""Pack each ablation variant's newest EMA as fp16 shards under 16 MiB: OUT/<variant>_ema_<i>.safetensors."""
import sys
from pathlib import Path
from safetensors.torch import load_file, save_file

abl, out = Path(sys.argv[1]), Path(sys.argv[2])
for vdir in sorted(p for p in abl.iterdir() if (p / "run" / "checkpoints").is_dir()):
    ckpts = sorted((vdir / "run" / "checkpoints").glob("step_*"))
    ckpts = [c for c in ckpts if (c / "ema.safetensors").is_file()]
    if not ckpts:
        continue
    ema = load_file(ckpts[-1] / "ema.safetensors")
    shards, cur, size = [], {}, 0
    for k, v in ema.items():
        v = v.half() if v.is_floating_point() else v
        if size + v.numel() * v.element_size() > 14 * 2**20 and cur:
            shards.append(cur); cur, size = {}, 0
        cur[k] = v.contiguous(); size += v.numel() * v.element_size()
    shards.append(cur)
    for i, s in enumerate(shards):
        save_file(s, str(out / f"{vdir.name}_ema_{i}.safetensors"))
    print("packed", vdir.name, ckpts[-1].name, len(shards), "shards")
