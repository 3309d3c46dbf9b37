#!/usr/bin/env bash
# Training speed on one GPU, both backbones against their original code, in one job:
#   1. criss-cross (`cbramod` config) vs the original CBraMod, fp32 and bf16
#      (benchmarks/train.py --device cuda);
#   2. the EEGDM-size denoiser vs the original EEGDM code (benchmarks/diffusion_speed.py);
#   3. torch.compile rows for criss-cross, fewer processes (compilation dominates them).
# The originals go under .bench/ (see each script's docstring). Every stage has its own time
# limit and a failed stage does not stop the next; raw per-process rows land in $OUT.
#
#   OUT=/tmp/out bash benchmarks/gpu_speed.sh
#   DEVICE=cpu REPEATS=1 STEPS=1 WARMUP=0 COMPILE_REPEATS=0 LAYERS=2 bash ...  # smoke run
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_speed}
DEVICE=${DEVICE:-cuda}
REPEATS=${REPEATS:-5}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
LAYERS=${LAYERS:-20}
COMPILE_REPEATS=${COMPILE_REPEATS:-3}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/benchmarks:$PWD/.bench/eegdm_orig/deps${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }
TAG=${DEVICE%%:*}

stamp "environment"
{ $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
      --format=csv,noheader; } | tee "$OUT/environment.txt"

stamp "1. criss-cross vs original CBraMod"
rm -f "benchmarks/results/train_$TAG.json"
timeout 260 $PY benchmarks/train.py --device "$DEVICE" --repeats "$REPEATS" --steps "$STEPS" \
    --warmup "$WARMUP" --impls original,brainfm,brainfm-bf16 2>&1 | tail -12
cp "benchmarks/results/train_$TAG.json" "$OUT/train_$TAG.json" && rm "benchmarks/results/train_$TAG.json"

stamp "2. denoiser vs original EEGDM"
rm -f "benchmarks/results/diffusion_speed_${TAG}_${LAYERS}blocks.json"
timeout 200 $PY benchmarks/diffusion_speed.py --device "$DEVICE" --repeats "$REPEATS" \
    --steps "$STEPS" --warmup "$WARMUP" --layers "$LAYERS" 2>&1 | tail -8
cp "benchmarks/results/diffusion_speed_${TAG}_${LAYERS}blocks.json" "$OUT/"

if [ "$COMPILE_REPEATS" -gt 0 ]; then
  stamp "3. criss-cross compiled"
  timeout 130 $PY benchmarks/train.py --device "$DEVICE" --repeats "$COMPILE_REPEATS" \
      --steps "$STEPS" --warmup "$WARMUP" --impls brainfm-compile,brainfm-bf16-compile 2>&1 \
      | tail -8
  cp "benchmarks/results/train_$TAG.json" "$OUT/train_${TAG}_compile.json"
fi
stamp "done"
