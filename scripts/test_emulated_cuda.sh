#!/usr/bin/env bash
# The CUDA backend's tests on the CPU: builds rwkv-dist against the CUDA
# emulator (-DRWKV_CUDA=EMULATE, cuda_emulator/README.md) into build-emu/ and
# runs every test labelled `cuda` (each CUDA op against the CPU op, whole
# training steps, the caching allocator, NCCL and the GPU layouts over MPI)
# and `emulator` (the emulator's own checks), with each block's threads in
# index order, then the kernel tests again in reverse order. No GPU or nvcc
# needed; scripts/test.sh runs it.
#
#   bash scripts/test_emulated_cuda.sh      (EMU_BUILD_DIR=build-emu by default)
set -euo pipefail
cd "$(dirname "$0")/.."
EMU_BUILD_DIR=${EMU_BUILD_DIR:-build-emu}
cmake -S . -B "$EMU_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=EMULATE -DRWKV_BUILD_BENCH=ON >/dev/null
# Only what the cuda/emulator tests need: their binaries and the tools they run.
cmake --build "$EMU_BUILD_DIR" -j "$(nproc)" --target rwkv_cuda_tests rwkv_cuda_emulator_tests \
  rwkv_emulated_nccl_tests rwkv_parallel_layout_tests rwkv_parallel_nccl_tests rwkv_launch_chaos_tests rwkv-bench-gpu rwkv-eval \
  rwkv-train rwkv-data
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "test_emulated_cuda: threads in index order"
ctest --test-dir "$EMU_BUILD_DIR" -L 'cuda|emulator' --output-on-failure -j "$(nproc)" --timeout 600
# The kernels' tests again with each block's threads run in reverse (the
# multi-rank jobs run the same kernels; once is enough for them).
echo "test_emulated_cuda: threads in reverse order"
RWKV_CUDA_EMULATOR_ORDER=reverse ctest --test-dir "$EMU_BUILD_DIR" -L cuda -E '^(parallel|launch|bench|cuda)\.' \
  --output-on-failure -j "$(nproc)" --timeout 600
