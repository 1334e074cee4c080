#!/bin/bash
# Device run: several ablation variants side by side on one GPU; EMA fp16 shards + results tar into $OUT.
# usage: bash tools/gpu/ablate.sh OUT DEADLINE_S PY STEPS EVAL_LIMIT DEVICE VARIANTS(comma) [extra --set overrides]
OUT=$1; DEADLINE=$2; PY=$3; STEPS=$4; LIMIT=$5; DEVICE=$6; VARS=$7; shift 7
export PYTHONUNBUFFERED=1
ABL=${ABL:-/tmp/abl}
T0=$(date +%s); PIDS=""
for V in ${VARS//,/ }; do
  $PY -m dreamtext.cli ablate --out $ABL --steps $STEPS --variants $V \
    --eval-limit $LIMIT --eval-steps 10 --eval-device $DEVICE --eval-batch ${EVAL_BATCH:-1} --no-progress \
    --set glyph_prior=true loss.attn_form=ce loss.alpha=0.3 train.lr=4e-4 train.warmup_steps=50 \
          train.bf16=false train.sample_every=0 train.probe_every=0 train.ckpt_every=200 train.log_every=25 "$@" \
    > $OUT/ablate_$V.log 2>&1 &
  PIDS="$PIDS $!"
done
while true; do
  sleep 1; ALIVE=0; for P in $PIDS; do kill -0 $P 2>/dev/null && ALIVE=1; done
  [ $ALIVE = 0 ] && break
  if [ $(( $(date +%s) - T0 )) -ge $DEADLINE ]; then echo "deadline: stopping"; kill -TERM $PIDS; sleep 8; kill -9 $PIDS 2>/dev/null; break; fi
done
echo "ablations ended after $(( $(date +%s) - T0 )) s"
for V in ${VARS//,/ }; do echo "== $V"; tail -3 $OUT/ablate_$V.log; tail -1 $ABL/$V/run/metrics.jsonl | cut -c1-300; done
$PY tools/gpu/pack.py ablation $ABL $OUT
cd $ABL && tar -czf $OUT/abl.tar.gz --exclude='*.safetensors' --exclude=optimizer* . 
cd $OUT && cat ablate_*.log > ablate.log && rm ablate_*.log; ls -la $OUT
