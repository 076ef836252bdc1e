#!/usr/bin/env bash
# Configures and builds rwkv-dist into build/ (Release). Extra arguments go to
# CMake, e.g. scripts/build.sh -DRWKV_CUDA=OFF. CUDA targets are built when nvcc
# is found (RWKV_CUDA=AUTO); /usr/local/cuda/bin is searched as well.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
