#!/usr/bin/env bash
# The benchmark suite's one entry point: builds the benchmarks and prints every
# measurement (readable lines, then one JSON line per benchmark):
#   rwkv-bench-kernels   sgemm peak (the MFU denominator), WKV-4 forward/backward vs the scalar loop
#   rwkv-bench-train     training tokens/s, MFU, op shares, peak memory vs analytic (tiny and 169M shapes)
#   rwkv-bench-checkpoint  checkpoint save/load GB/s, time training is blocked by an async save
#   rwkv-bench-data      rwkv-data prepare throughput (MB/s of text)
#   rwkv-bench-parallel  bytes communicated per step (4 MPI ranks)
#   rwkv-bench-pipeline  a whole step's bytes per group and the measured pipeline bubble (2 ranks)
#   rwkv-bench-planner   rwkv-plan's predicted memory and step time next to rwkv-train's (1 and 2 ranks)
#   rwkv-bench-gpu       GPU training steps (bf16 and fp32): tokens/s, MFU against the measured bf16 peak;
#                        without a GPU it says so and measures nothing
#
#   bash bench/run.sh [--quick]
# Benchmarks measure; they never assert. Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
QUICK=${1:-}
bash scripts/build.sh >/dev/null
B="$BUILD_DIR/bench"
echo "== kernels";  "$B/rwkv-bench-kernels" $QUICK
if [ "$QUICK" = "--quick" ]; then
  echo "== training (tiny)"; "$B/rwkv-bench-train" --shape tiny --steps 2
else
  echo "== training";        "$B/rwkv-bench-train" --shape all --steps 3
fi
if [ -x "$B/rwkv-bench-checkpoint" ]; then
  echo "== checkpoints"
  if [ "$QUICK" = "--quick" ]; then "$B/rwkv-bench-checkpoint" --shape tiny; else "$B/rwkv-bench-checkpoint" --shape 169m; fi
fi
if [ -x "$B/data/rwkv-bench-data" ]; then echo "== data prepare"; "$B/data/rwkv-bench-data"; fi
if [ -x "$B/rwkv-bench-gpu" ]; then
  echo "== GPU training"
  if [ "$QUICK" = "--quick" ]; then "$B/rwkv-bench-gpu" --shape 169m --steps 2; else "$B/rwkv-bench-gpu" --shape all; fi
fi
if [ -x "$B/parallel/rwkv-bench-parallel" ]; then
  echo "== parallel (4 ranks)"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
    mpirun --allow-run-as-root --oversubscribe -np 4 "$B/parallel/rwkv-bench-parallel"
fi
if [ -x "$B/parallel/rwkv-bench-pipeline" ]; then
  echo "== pipeline (2 ranks)"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
    mpirun --allow-run-as-root --oversubscribe -np 2 "$B/parallel/rwkv-bench-pipeline"
fi
if [ -x "$B/planner/rwkv-bench-planner" ]; then
  echo "== planner vs rwkv-train"
  if [ "$QUICK" = "--quick" ]; then
    "$B/planner/rwkv-bench-planner" --layouts 1x1x1,1x1x2 --steps 3
  else
    "$B/planner/rwkv-bench-planner"
  fi
fi
