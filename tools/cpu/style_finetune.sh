#!/usr/bin/env bash
# Version 7's CPU fine-tune (DESIGN §13, issue 26): version 6 as shipped gains the style reference's input
# channels (zero-initialised: at step 0 it computes exactly what v6 computes) and trains on same-style edit
# pairs, on both cores as two single-threaded DDP processes. Re-running the same command resumes.
#   tools/cpu/style_finetune.sh RUN_DIR [extra key=value overrides, e.g. loss.ocr=0.05]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:?usage: tools/cpu/style_finetune.sh RUN_DIR [key=value ...]}
shift
RESUME=()
if compgen -G "$RUN/checkpoints/step_*/model.safetensors" >/dev/null; then RESUME=(--resume); fi
OMP_NUM_THREADS=1 exec .venv/bin/torchrun --standalone --nproc_per_node "${NPROC:-2}" -m dreamtext.cli train \
  --preset tiny --no-progress "${RESUME[@]}" \
  glyph_prior=true loss.attn_form=ce loss.alpha=0.3 loss.k_gt=10000 \
  style_ref=true data.edit_pairs=0.75 data.pair_length_delta=3 data.pair_blank_source=0.1 \
  data.style_ref_drop=0.2 data.style_ref_same=0.1 \
  train.init_from=dreamtext/assets/model train.out_dir="$RUN" train.seed=26 \
  train.batch_size=16 train.lr=5e-5 train.conv_in_lr_scale=20 train.warmup_steps=50 train.lr_schedule=constant \
  train.max_steps=1000000 train.ema_decay=0.998 train.ckpt_every=100 train.keep_ckpts=3 train.sample_every=500 \
  train.log_every=20 train.probe_every=0 train.compile=true "$@"
