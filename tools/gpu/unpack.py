"""Here, after a GPU run: EMA shards + the run checkpoint's config.json → a pipeline folder `dreamtext eval --ckpt` loads.

    .venv/bin/python tools/gpu/unpack.py 'DIR/ema_*.safetensors' CHECKPOINT_DIR OUT_DIR
    .venv/bin/python tools/gpu/unpack.py 'DIR/gt_ema_*.safetensors' ablation/gt/run/checkpoints/step_00001000 OUT

The EMA tracks the trainable tensors only; the text encoder's pre-training heads (`pos_head`,
`logit_scale`), frozen and unused when sampling, come from a fresh model of the same config.
"""
import glob
import sys

import torch
from safetensors.torch import load_file

from dreamtext.edit.pipeline import DreamTextPipeline
from dreamtext.model.checkpoint import read_config
from dreamtext.model.network import DreamTextModel

pattern, ckpt_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
files = sorted(glob.glob(pattern))
if not files:
    sys.exit(f"no file matches {pattern!r}")
weights = {}
for f in files:
    weights.update(load_file(f))
cfg = read_config(ckpt_dir)  # the folder holding the run checkpoint's config.json
torch.manual_seed(0)
model = DreamTextModel(cfg)
missing, unexpected = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
unused = [k for k in missing if not k.startswith(("text_encoder.pos_head", "text_encoder.logit_scale"))]
if unused or unexpected:
    sys.exit(f"the shards do not fit this config: missing {unused[:5]}, unexpected {unexpected[:5]}")
DreamTextPipeline(model, cfg).save_pretrained(out, source={"ema_shards": files, "checkpoint": ckpt_dir})
print(f"wrote {out} ({len(weights)} tensors from {len(files)} shards)")
