#!/usr/bin/env bash
# The test command: installs what is needed, builds, and runs every test.
# GPU tests (label cuda) skip with a message where no GPU exists; then the same
# GPU tests run on the CPU through the CUDA emulator (scripts/test_emulated_cuda.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh "$@"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 600
bash scripts/test_emulated_cuda.sh
