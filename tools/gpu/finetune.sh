#!/bin/bash
# GPU machine: fine-tune the shipped recipe from $INIT (default: the shipped weights) for TRAIN_S seconds, then pack.
# usage: bash tools/gpu/finetune.sh OUT TRAIN_S PY [extra overrides]
OUT=$1; TRAIN_S=$2; PY=$3; shift 3
export PYTHONUNBUFFERED=1
RUN=/tmp/gpu-run
rm -rf $RUN
$PY -m dreamtext.cli train --preset tiny --no-progress \
  glyph_prior=true loss.attn_form=ce loss.alpha=0.3 loss.k_gt=10000 \
  train.init_from=${INIT:-dreamtext/assets/model} train.out_dir=$RUN train.seed=1 \
  train.lr=4e-4 train.warmup_steps=100 train.lr_schedule=constant train.max_steps=1000000 \
  train.ckpt_every=500 train.sample_every=1000 train.log_every=50 train.bf16=false train.probe_every=0 "$@" \
  > $OUT/train.log 2>&1 &
PID=$!
for i in $(seq $TRAIN_S); do sleep 1; kill -0 $PID 2>/dev/null || break; done
kill -TERM $PID
wait $PID
echo "train exit $?"
tail -5 $OUT/train.log
tail -3 $RUN/metrics.jsonl | cut -c1-400
$PY tools/gpu/pack.py run $RUN $OUT
