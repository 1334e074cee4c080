#!/bin/bash
# GPU machine: time the training step at several batch sizes, then fine-tune (finetune.sh) at the knee
# for what is left of TOTAL_S seconds. The sweep's JSON lines go to OUT/sweep.jsonl (and the log).
# usage: bash tools/gpu/sweep_finetune.sh OUT TOTAL_S PY BATCHES(comma) [extra finetune overrides]
OUT=$1; TOTAL_S=$2; PY=$3; BATCHES=$4; shift 4
T0=$(date +%s)
$PY benchmarks/train_throughput.py --sweep $BATCHES --steps 10 --set train.bf16=false --set train.tf32=true \
  | tee $OUT/sweep.jsonl
# The smallest batch within 10 % of the best rate: past the knee a bigger batch buys few samples/s and costs
# optimiser steps (same learning rate, fewer updates).
BEST=$($PY -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]; \
top=max([r['samples_per_s'] for r in rows] or [0]); \
print(min([r['batch'] for r in rows if r['samples_per_s'] >= 0.9 * top] or [128]))" $OUT/sweep.jsonl)
# The EMA's horizon in samples stays that of the shipped recipe (decay 0.999 at batch 128: ~128k samples);
# at 0.999 a batch of 1,024 would average over the last ~1M samples, most of a short run and its start.
EMA=$($PY -c "print(round(1 - 0.001 * $BEST / 128, 6))")
LEFT=$(( TOTAL_S - ($(date +%s) - T0) ))
echo "sweep took $(( $(date +%s) - T0 )) s; fine-tuning at batch $BEST (EMA decay $EMA) for $LEFT s"
bash "$(dirname "$0")/finetune.sh" $OUT $LEFT $PY train.batch_size=$BEST train.ema_decay=$EMA "$@"
