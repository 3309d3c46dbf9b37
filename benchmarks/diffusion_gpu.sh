#!/usr/bin/env bash
# The diffusion backbone at the published size on one GPU, in one job (issue 11):
#   1. pretrain `eegdm` (20 blocks, d 128) under a wall-clock budget, keeping a checkpoint
#      every KEEP steps;
#   2. score every kept checkpoint on held-out subjects (benchmarks/diffusion_checks.py:
#      v-MSE per t beside zeros / linear / Wiener, generated vs real band powers);
#   3. pooled latents of the trained and of a random backbone for the linear probe on
#      subjects the pretraining never saw (benchmarks/diffusion_probe.py extract);
#   4. training speed and peak memory against the original EEGDM code on the same GPU
#      (benchmarks/diffusion_speed.py --device cuda).
# Every stage writes into $OUT (default runs/diffusion_gpu/out) and a failed stage does not
# stop the next. Settings: environment variables below. Stores under $STORES.
#
#   OUT=/tmp/out STORES=stores TRAIN_TIME=00:00:04:30 bash benchmarks/diffusion_gpu.sh
#   RESUME=1 TRAIN_TIME=00:00:07:00 SPEED_REPEATS=0 bash ...   # train on (time counts in total)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/diffusion_gpu/out}
STORES=${STORES:-stores}
RUN=${RUN:-runs/diffusion_gpu/run}
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL:-eegdm}
TRAINER=${TRAINER:-gpu}
TRAIN_TIME=${TRAIN_TIME:-00:00:04:30}
TOTAL_STEPS=${TOTAL_STEPS:-3000}
KEEP=${KEEP:-500}
BATCH=${BATCH:-32}
CHANNELS=${CHANNELS:-8}
PER_BIN=${PER_BIN:-400}
GENERATE=${GENERATE:-128}
SPEED_REPEATS=${SPEED_REPEATS:-2}
SPEED_STEPS=${SPEED_STEPS:-5}
PY=${PY:-python3}
mkdir -p "$OUT" "$(dirname "$RUN")"
export PYTHONPATH="$PWD:$PWD/benchmarks:$PWD/.devsite${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

# eegmat: even subjects pretrain, odd subjects are never seen (the probe's held-out set)
ODD=$(seq -f "%02g" 1 2 35 | paste -sd, -)
EXCLUDE=$(seq -f "eegmat/%02g" 1 2 35 | paste -sd, -)

stamp "1. pretrain $MODEL ($TRAIN_TIME)"
RESUME_ARG=()
if [ -n "${RESUME:-}" ] && [ -f "$RUN/checkpoints/last.ckpt" ]; then  # continue the same run
  RESUME_ARG=(resume="$RUN/checkpoints/last.ckpt")
else
  rm -rf "$RUN"
fi
$PY -c "from brainfm.cli import pretrain_main; pretrain_main()" \
    task=diffusion model="$MODEL" trainer="$TRAINER" trainer.precision=32-true \
    "data.datasets=[eegmat]" data.view=continuous \
    "data.exclude_groups=[$EXCLUDE]" data.batch_size="$BATCH" \
    task.channels_per_window="$CHANNELS" task.lr=5.0e-4 task.min_lr=5.0e-5 \
    task.warmup_steps=100 task.total_steps="$TOTAL_STEPS" \
    trainer.max_epochs=-1 trainer.max_steps="$TOTAL_STEPS" ++trainer.max_time="$TRAIN_TIME" \
    trainer.val_check_interval="$KEEP" trainer.check_val_every_n_epoch=null \
    ++trainer.limit_val_batches=16 trainer.enable_progress_bar=false \
    checkpoint_every_n_steps="$KEEP" checkpoint_keep_every_n_steps="$KEEP" \
    store_root="$STORES" hydra.run.dir="$RUN" "${RESUME_ARG[@]}" 2>&1 | tail -40
cp "$RUN/metrics.csv" "$OUT/" 2>/dev/null
ls -la "$RUN/checkpoints" 2>&1

stamp "2. checks against step"
$PY benchmarks/diffusion_checks.py "$RUN" --snapshots --device "$DEVICE" \
    --per-bin "$PER_BIN" --generate "$GENERATE" \
    --step-figure "$OUT/diffusion_checks_by_step.png" \
    --figure "$OUT/diffusion_generated.png" > "$OUT/diffusion_checks.md" 2>&1
tail -40 "$OUT/diffusion_checks.md"
cp "$RUN/diffusion_checks_by_step.json" "$OUT/" 2>/dev/null

stamp "3. probe features"
$PY benchmarks/diffusion_probe.py extract --run "$RUN" --store "$STORES/eegmat.continuous" \
    --subjects "$ODD" --piece 1000 --features latents --device "$DEVICE" \
    --out "$OUT/lat_eegmat.npz" 2>&1 | tail -2
if [ -d "$STORES/ssvep_exoskeleton" ]; then
  $PY benchmarks/diffusion_probe.py extract --run "$RUN" --store "$STORES/ssvep_exoskeleton" \
      --features latents --device "$DEVICE" --out "$OUT/lat_ssvep.npz" 2>&1 | tail -2
fi

stamp "4. speed against the original"
if [ "$SPEED_REPEATS" -gt 0 ] && [ -f .bench/eegdm_orig/model/diffusion_model.py ]; then
  $PY benchmarks/diffusion_speed.py --device "$DEVICE" --repeats "$SPEED_REPEATS" \
      --steps "$SPEED_STEPS" --warmup 2 --init /tmp/eegdm_init.pth > "$OUT/speed.txt" 2>&1
  tail -12 "$OUT/speed.txt"
fi
stamp "done"
