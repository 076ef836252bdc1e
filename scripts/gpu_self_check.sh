#!/usr/bin/env bash
# The GPU self-check, for a node of the cluster before a long job: builds
# rwkv-dist with CUDA and runs every test labelled `cuda`:
#   - every CUDA op against the CPU op on the same inputs (f32 and bf16),
#   - one whole training step on the GPU against the CPU step (f32), and bf16
#     mixed precision against the f32 CPU step,
#   - the caching allocator, the NCCL communicator on 1 and 2 ranks, and the
#     (2,1,1), (1,2,1), (1,1,2) layouts with a GPU per rank against one GPU.
# Tests that need more GPUs than the node has are skipped and listed; the
# script fails when any test fails, or when no GPU is usable at all.
#
#   bash scripts/gpu_self_check.sh        (BUILD_DIR=build by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_self_check: no usable GPU here (nvidia-smi fails); run it on a GPU node" >&2
  exit 1
fi
nvidia-smi -L
bash scripts/setup.sh
bash scripts/build.sh -DRWKV_CUDA=ON
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LOG="$BUILD_DIR/gpu_self_check.log"
status=0
ctest --test-dir "$BUILD_DIR" -L cuda --output-on-failure --timeout 600 | tee "$LOG" || status=$?
skipped=$(grep -c "Skipped" "$LOG" || true)
if [ "$skipped" -gt 0 ]; then
  echo "gpu_self_check: $skipped test(s) skipped (more GPUs than this node has, or no NCCL); not verified:"
  grep "Skipped" "$LOG" | sed 's/^/    /'
fi
if [ "$status" -ne 0 ]; then
  echo "gpu_self_check: FAILED: do not start a long job on this build/node; the failures are above and in $LOG" >&2
  exit "$status"
fi
echo "gpu_self_check: passed"
