#!/usr/bin/env bash
# Keeps the GPU bundle (scripts/gpu_bundle.sh) working where no GPU is: packs
# this build's binaries, unpacks them elsewhere and runs run_gpu_check.sh.
# Every bundled binary must load from the bundle (no "not found" library),
# the check must find the corpus and config it ships, and without a GPU it
# must fail saying no test ran on a GPU (on a GPU node it must pass).
#
#   check_gpu_bundle.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR [expect]
#
# expect: "auto" (default: pass where nvidia-smi sees a GPU, else the no-GPU
# failure) or "pass" (the emulated build, whose binaries bring their GPU;
# the check then runs small: a few tests, the tiny bench shape, 4 steps).
set -euo pipefail
SRC=$1 BUILD=$2 SCRATCH=$3 EXPECT=${4:-auto}
if [ "$EXPECT" = auto ]; then
  if nvidia-smi -L >/dev/null 2>&1; then EXPECT=pass; else EXPECT=no-gpu; fi
fi
if [ "$EXPECT" = pass ] && ! nvidia-smi -L >/dev/null 2>&1; then
  export CUDA_TESTS_FILTER='CudaGemm.*:CudaModelStep.*:Dtypes/CudaWkv4.ForwardMatchesCpu/*' BENCH_ARGS='--shape tiny --batch 1 --ctx 64 --steps 2 --gemm-size 64' TRAIN_STEPS=4 EVAL_PASSAGES=3
fi
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
# Fast compression: the archive is thrown away.
XZ_OPT=-0 BUILD_DIR=$BUILD BUNDLE=$SCRATCH/gpu-bundle.tar.xz bash "$SRC/scripts/gpu_bundle.sh" --pack-only
tar -C "$SCRATCH" -xJf "$SCRATCH/gpu-bundle.tar.xz"
B=$SCRATCH/gpu-bundle
for f in bin/rwkv_cuda_tests bin/rwkv-bench-gpu bin/rwkv-train bin/rwkv-eval bin/rwkv-data tiny-test.yaml data/train_00000.bin \
         data/train_00000.idx data/passages.jsonl run_gpu_check.sh gpu_errors_table.py COMMIT; do
  [ -e "$B/$f" ] || { echo "check_gpu_bundle: the bundle lacks $f" >&2; exit 1; }
done
set +e
"$B/run_gpu_check.sh" "$SCRATCH/results"
rc=$?
set -e
summary=$SCRATCH/results/summary.txt
cat "$summary"
if grep -q "libraries not found" "$summary"; then
  echo "check_gpu_bundle: a bundled binary does not load" >&2
  exit 1
fi
grep -q "^| CudaGemm.MatchesCpuForEveryLayoutAndDtype |" "$SCRATCH/results/errors.md" ||
  { echo "check_gpu_bundle: errors.md lacks the tests' rows" >&2; exit 1; }
if [ "$EXPECT" = pass ]; then
  [ $rc -eq 0 ] || { echo "check_gpu_bundle: the GPU check failed (exit $rc)" >&2; exit 1; }
  grep -q "^| CudaGemm.MatchesCpuForEveryLayoutAndDtype | passed | .* | [0-9.e-]* | [0-9.e-]* |" "$SCRATCH/results/errors.md" ||
    { echo "check_gpu_bundle: errors.md lacks the GEMM test's measured error" >&2; exit 1; }
  grep -qE "tok/s" "$SCRATCH/results/bench_gpu.log" || { echo "check_gpu_bundle: the bench printed no tok/s" >&2; exit 1; }
  for p in f32 bf16; do
    grep -q "done:" "$SCRATCH/results/train_$p.log" || { echo "check_gpu_bundle: the $p training did not finish" >&2; exit 1; }
  done
  for p in "cuda fp32" "cuda bf16"; do
    grep -q "rwkv-eval $p: .* ok$" "$summary" || { echo "check_gpu_bundle: no rwkv-eval $p agreement" >&2; exit 1; }
  done
else
  [ $rc -ne 0 ] || { echo "check_gpu_bundle: the GPU check passed without a GPU" >&2; exit 1; }
  grep -q "no test ran on a GPU" "$summary" || { echo "check_gpu_bundle: no-GPU failure not reported" >&2; exit 1; }
  grep -q "needs a CUDA GPU" "$summary" || { echo "check_gpu_bundle: the bench did not say it needs a GPU" >&2; exit 1; }
  # The trainer got as far as the device check: config and corpus were found.
  grep -q "device is cuda, but no usable GPU" "$SCRATCH/results/train_f32.log" ||
    { echo "check_gpu_bundle: rwkv-train failed before the device check:" >&2; cat "$SCRATCH/results/train_f32.log" >&2; exit 1; }
fi
echo "check_gpu_bundle: ok"
