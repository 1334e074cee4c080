#!/bin/bash
# GPU machine: time the training step at several batch sizes, then fine-tune (finetune.sh) at the knee
# for what is left of TOTAL_S seconds. The sweep's JSON lines go to OUT/sweep.jsonl (and the log).
# COMPILE=1 in front also times each batch with train.compile=true, and the fine-tune compiles too when that
# pays for its compilation (first_step_s) within the time left.
# usage: [COMPILE=1] bash tools/gpu/sweep_finetune.sh OUT TOTAL_S PY BATCHES(comma) [extra finetune overrides]
OUT=$1; TOTAL_S=$2; PY=$3; BATCHES=$4; shift 4
T0=$(date +%s)
$PY benchmarks/train_throughput.py --sweep $BATCHES --steps 10 --set train.bf16=false --set train.tf32=true \
  ${COMPILE:+--compile} | tee $OUT/sweep.jsonl
LEFT=$(( TOTAL_S - ($(date +%s) - T0) ))
# The smallest eager batch within 10 % of the best eager rate: past the knee a bigger batch buys few samples/s
# and costs optimiser steps (same learning rate, fewer updates). Then compile if, at that batch, the compiled
# rate over the time left after compiling again (first_step_s, an upper bound: the cache is warm) beats eager.
read BEST COMPILED < <($PY -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
eager = [r for r in rows if not r.get('compile')]
top = max([r['samples_per_s'] for r in eager] or [0])
best = min([r['batch'] for r in eager if r['samples_per_s'] >= 0.9 * top] or [128])
left = float(sys.argv[2])
at_best = {r.get('compile', False): r for r in rows if r['batch'] == best}
c, e = at_best.get(True), at_best.get(False)
wins = c is not None and e is not None and c['samples_per_s'] * (left - c['first_step_s']) > e['samples_per_s'] * left
print(best, 'true' if wins else 'false')" $OUT/sweep.jsonl $LEFT)
# The EMA's horizon in samples stays that of the shipped recipe (decay 0.999 at batch 128: ~128k samples);
# at 0.999 a batch of 1,024 would average over the last ~1M samples, most of a short run and its start.
EMA=$($PY -c "print(round(1 - 0.001 * $BEST / 128, 6))")
echo "sweep took $(( $(date +%s) - T0 )) s; fine-tuning at batch $BEST (EMA decay $EMA, compile $COMPILED) for $LEFT s"
bash "$(dirname "$0")/finetune.sh" $OUT $LEFT $PY train.batch_size=$BEST train.ema_decay=$EMA \
  train.compile=$COMPILED "$@"
