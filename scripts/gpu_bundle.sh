#!/usr/bin/env bash
# A relocatable GPU check for a node that has a GPU driver and the CUDA 13
# runtime libraries (cuBLAS, NCCL) but none of the build dependencies: GPU
# compute nodes of a cluster often have no compiler, no -dev packages and no
# network. Built here, run there:
#
#   bash scripts/gpu_bundle.sh                    -> gpu-bundle.tar.xz (BUNDLE=path to change it)
#   (copy it to the node)
#   tar xJf gpu-bundle.tar.xz && gpu-bundle/run_gpu_check.sh [results dir]
#
# The archive holds the CUDA tests (every op against the CPU op, whole steps
# f32 and bf16, the caching allocator, checkpoints; rwkv_cuda_tests),
# rwkv-bench-gpu, rwkv-train, rwkv-eval and rwkv-data, a small byte-level
# corpus with LAMBADA-style passages cut from the same text, and
# every shared library they load except the C library and CUDA's own
# (libcudart, libcublas, libcublasLt, libnccl), which must match the node's
# driver and are found there (run_gpu_check.sh says which are missing).
# Multi-rank checks (NCCL over MPI, GPU layouts) need mpirun and a full
# build: scripts/gpu_self_check.sh.
#
#   bash scripts/gpu_bundle.sh --pack-only        packs what BUILD_DIR already holds (no setup, no build;
#                                                 tests/cuda/check_gpu_bundle.sh uses it)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUNDLE=${BUNDLE:-$PWD/gpu-bundle.tar.xz}
PACK_ONLY=0
case "${1:-}" in
  "") ;;
  --pack-only) PACK_ONLY=1 ;;
  *) echo "gpu_bundle: unknown argument '$1' (expected nothing or --pack-only)" >&2; exit 2 ;;
esac
if [ $PACK_ONLY -eq 0 ]; then
  command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || {
    echo "gpu_bundle: nvcc not found: the bundle needs a CUDA build (install the CUDA toolkit)" >&2
    exit 1
  }
  bash scripts/setup.sh
  # A new build directory asks for CUDA; an existing one keeps its settings (AUTO finds nvcc).
  if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then cmake -S . -B "$BUILD_DIR" >/dev/null
  else cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRWKV_CUDA=ON >/dev/null; fi
  if ! cmake --build "$BUILD_DIR" --target help | grep -c rwkv_cuda_tests >/dev/null; then
    echo "gpu_bundle: $BUILD_DIR is not a CUDA build (no rwkv_cuda_tests target)" >&2
    echo "  ---> HINT: BUILD_DIR=build-gpu bash scripts/gpu_bundle.sh (a new directory is configured with -DRWKV_CUDA=ON)" >&2
    exit 1
  fi
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target rwkv_cuda_tests rwkv-bench-gpu rwkv-train rwkv-eval rwkv-data
fi
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/gpu-bundle
mkdir -p "$ROOT/bin" "$ROOT/lib" "$ROOT/data"
BINS=("$BUILD_DIR/tests/cuda/rwkv_cuda_tests" "$BUILD_DIR/bench/rwkv-bench-gpu" "$BUILD_DIR/trainer/rwkv-train"
      "$BUILD_DIR/trainer/rwkv-eval" "$BUILD_DIR/data/rwkv-data")
for b in "${BINS[@]}"; do
  [ -x "$b" ] || { echo "gpu_bundle: $b is missing: build it first (bash scripts/gpu_bundle.sh builds it)" >&2; exit 1; }
done
cp "${BINS[@]}" "$ROOT/bin/"
# Every library the binaries load, but the C library's and CUDA's (the node's own).
for b in "${BINS[@]}"; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv)\.so|ld-linux|/libcudart\.|/libcublas|/libnccl\.' |
  while read -r lib; do cp -L "$lib" "$ROOT/lib/"; done
# The C++ runtime apart: run_gpu_check.sh uses it only where the node's is missing or too old.
mkdir -p "$ROOT/lib/runtime"
for f in "$ROOT"/lib/libstdc++.so.* "$ROOT"/lib/libgcc_s.so.* "$ROOT"/lib/libgomp.so.*; do
  if [ -e "$f" ]; then mv "$f" "$ROOT/lib/runtime/"; fi
done
# A small corpus from text every Debian system has (the GNU licences), as
# binidx shards, and 64 passages of 40 words from it for rwkv-eval (its
# LAMBADA scoring: the last word after the rest).
python3 - "$STAGE/corpus.jsonl" "$ROOT/data/passages.jsonl" <<'EOF'
import glob, json, sys
words = []
with open(sys.argv[1], "w") as out:
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        try:
            text = open(path, encoding="utf-8").read()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        for i in range(0, len(text), 4000):
            out.write(json.dumps({"text": text[i:i + 4000]}) + "\n")
        words += text.split()
with open(sys.argv[2], "w") as out:
    for i in range(64):
        out.write(json.dumps({"text": " ".join(words[i * 40:(i + 1) * 40])}) + "\n")
EOF
"$BUILD_DIR/data/rwkv-data" prepare --tokenizer bytes --input "$STAGE/corpus.jsonl" --output "$ROOT/data/train" --overwrite >/dev/null 2>&1
cp configs/tiny-test.yaml "$ROOT/tiny-test.yaml"
cp scripts/gpu_bundle_run.sh "$ROOT/run_gpu_check.sh"
cp scripts/gpu_errors_table.py "$ROOT/gpu_errors_table.py"
chmod +x "$ROOT/run_gpu_check.sh"
git rev-parse HEAD > "$ROOT/COMMIT" 2>/dev/null || echo unknown > "$ROOT/COMMIT"
tar -C "$STAGE" -cJf "$BUNDLE" gpu-bundle
echo "gpu_bundle: $BUNDLE ($(du -h "$BUNDLE" | cut -f1); $(ls "$ROOT/lib" | wc -l) libraries, commit $(cat "$ROOT/COMMIT"))"
echo "  on the GPU node: tar xJf $(basename "$BUNDLE") && gpu-bundle/run_gpu_check.sh [results dir]"
