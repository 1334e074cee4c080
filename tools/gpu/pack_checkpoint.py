"""Pack the newest checkpoint of a run for the trip back: EMA fp32 in shards under 16 MiB, the rest in a tar."""
import json, sys, tarfile
from pathlib import Path
from safetensors.torch import load_file, save_file

run, out = Path(sys.argv[1]), Path(sys.argv[2])
ckpts = sorted((run / "checkpoints").glob("step_*"))
if not ckpts:
    sys.exit("no checkpoint")
ck = ckpts[-1]
ema = load_file(ck / "ema.safetensors")
shards, cur, size = [], {}, 0
for k, v in ema.items():
    if size + v.numel() * v.element_size() > 14 * 2**20 and cur:
        shards.append(cur); cur, size = {}, 0
    cur[k] = v.contiguous(); size += v.numel() * v.element_size()
shards.append(cur)
for i, s in enumerate(shards):
    save_file(s, str(out / f"ema_{i}.safetensors"))
with tarfile.open(out / "run.tar.gz", "w:gz") as tar:
    for name in ("config.json", "state.json"):
        tar.add(ck / name, arcname=f"{ck.name}/{name}")
    tar.add(run / "metrics.jsonl", arcname="metrics.jsonl")
    samples = sorted((run / "samples").glob("*.png"))
    for p in samples[-3:]:
        tar.add(p, arcname=f"samples/{p.name}")
print("packed", ck.name, len(shards), "shards", json.dumps({k: len(s) for k, s in enumerate(shards)}))
