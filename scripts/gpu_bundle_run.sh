#!/usr/bin/env bash
# run_gpu_check.sh of a GPU bundle (made by scripts/gpu_bundle.sh): checks a
# GPU node with the bundle's prebuilt binaries, without building anything.
#
#   gpu-bundle/run_gpu_check.sh [results dir]     (default: $OUT, else ./gpu-check-results)
#
# 1. finds the node's CUDA runtime libraries (CUDA_HOME, /usr/local/cuda, the
#    NVIDIA Python wheels) and says which are missing;
# 2. rwkv_cuda_tests: every CUDA op against the CPU op, whole training steps
#    (f32 and bf16) against the CPU step, the caching allocator, checkpoints;
# 3. rwkv-bench-gpu on the Pile shapes: tokens/s and MFU (PEAK_TFLOPS sets the
#    bf16 peak; known for A100, H100, H200);
# 4. rwkv-train on the GPU, f32 and bf16, on the bundle's corpus;
# 5. rwkv-eval of the f32 run's weights on the bundle's passages (LAMBADA
#    scoring) on the CPU and on the GPU in f32 and bf16: the GPU's mean
#    last-word nll within 1e-4 (f32) and 3e-2 (bf16) of the CPU's.
# Smaller runs (smoke tests, an emulated GPU): CUDA_TESTS_FILTER (a gtest
# filter), BENCH_ARGS (default --shape all), TRAIN_STEPS (default 40),
# EVAL_PASSAGES (default 64).
# Writes cuda_tests.log/.json, errors.md (each test's measured error against
# the CPU), bench_gpu.log, train_f32.log, train_bf16.log, eval.log and
# summary.txt into the results directory; exits non-zero when any part fails.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${1:-${OUT:-$PWD/gpu-check-results}}
mkdir -p "$RESULTS"
SUMMARY=$RESULTS/summary.txt
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
say "gpu-bundle of commit $(cat "$HERE/COMMIT") on $(hostname) at $(date -u +%FT%TZ)"
nvidia-smi -L 2>&1 | tee -a "$SUMMARY" || say "run_gpu_check: nvidia-smi failed (going on: the tests say whether a GPU is usable)"

# --- 1. libraries: the node's CUDA ones, then the bundle's (the bundle's C++
# runtime only where the node's is missing or too old for the binaries).
cuda_dirs=()
for d in "${CUDA_HOME:-}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
  [ -d "$d" ] && cuda_dirs+=("$d")
done
if command -v python3 >/dev/null 2>&1; then
  while read -r d; do [ -n "$d" ] && cuda_dirs+=("$d"); done < <(python3 - <<'EOF' 2>/dev/null
import glob, site
dirs = set()
for p in site.getsitepackages():
    dirs.update(glob.glob(p + "/nvidia/*/lib"))
print("\n".join(sorted(dirs)))
EOF
)
fi
path_of() { printf '%s\n' "$@" | awk '!seen[$0]++' | paste -sd: -; }  # in order, each once
export LD_LIBRARY_PATH=$(path_of "${cuda_dirs[@]}" "$HERE/lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd "$HERE"/bin/* 2>&1 | grep -q "not found"; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$HERE/lib/runtime
fi
missing=$(ldd "$HERE"/bin/* 2>&1 | grep "not found" | sed 's/^[[:space:]]*//' | sort -u)
if [ -n "$missing" ]; then
  say "run_gpu_check: libraries not found:"
  echo "$missing" | sed 's/^/    /' | tee -a "$SUMMARY"
  say "  ---> HINT: the node needs the CUDA 13 runtime (libcudart, libcublas, libcublasLt) and NCCL 2; set CUDA_HOME or LD_LIBRARY_PATH to where they are"
  exit 1
fi
say "libraries: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

status=0
part() {  # part NAME LOG COMMAND...: runs one part, records pass/fail and seconds
  local name=$1 log=$2; shift 2
  local start=$SECONDS
  "$@" > "$log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then say "done $name (exit 0, $((SECONDS - start)) s)"; else say "FAIL $name (exit $rc, $((SECONDS - start)) s): see $(basename "$log")"; status=1; fi
  return $rc
}

# --- 2. every CUDA op and whole steps against the CPU
part cuda_tests "$RESULTS/cuda_tests.log" "$HERE/bin/rwkv_cuda_tests" --gtest_output="json:$RESULTS/cuda_tests.json" \
  ${CUDA_TESTS_FILTER:+--gtest_filter="$CUDA_TESTS_FILTER"}
grep -E "^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test" "$RESULTS/cuda_tests.log" | tee -a "$SUMMARY"
grep -E "^\[  FAILED  \] [A-Za-z]" "$RESULTS/cuda_tests.log" | sort -u | tee -a "$SUMMARY"
# The measured error of each test's worst comparison, for docs/testing.md.
if command -v python3 >/dev/null 2>&1 && [ -s "$RESULTS/cuda_tests.json" ]; then
  python3 "$HERE/gpu_errors_table.py" "$RESULTS/cuda_tests.json" > "$RESULTS/errors.md" &&
    say "measured errors per test: errors.md"
fi
# Every test skipping means no GPU was usable: nothing was verified.
if ! grep -qE "^\[  PASSED  \] [1-9]" "$RESULTS/cuda_tests.log"; then
  say "FAIL cuda_tests: no test ran on a GPU (each skipped; the reason is in cuda_tests.log)"
  status=1
fi

# --- 3. throughput and MFU
peak=${PEAK_TFLOPS:-}
if [ -z "$peak" ]; then
  case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)" in
    *H100*|*H200*) peak=989 ;;   # dense bf16, SXM
    *A100*) peak=312 ;;
  esac
fi
# shellcheck disable=SC2086  # BENCH_ARGS holds several words
part bench_gpu "$RESULTS/bench_gpu.log" "$HERE/bin/rwkv-bench-gpu" ${BENCH_ARGS:---shape all} ${peak:+--peak-tflops "$peak"}
grep -E "tok/s|MFU|TFLOP" "$RESULTS/bench_gpu.log" | head -20 | tee -a "$SUMMARY"
if grep -q '"gpu": false' "$RESULTS/bench_gpu.log"; then
  say "FAIL bench_gpu: $(head -1 "$RESULTS/bench_gpu.log")"
  status=1
fi

# --- 4. the trainer on the GPU
WORK=$(mktemp -d)
steps=${TRAIN_STEPS:-40}
for precision in fp32 bf16; do
  log=$RESULTS/train_${precision/fp32/f32}.log
  part "rwkv-train device=cuda precision=$precision" "$log" "$HERE/bin/rwkv-train" --config "$HERE/tiny-test.yaml" \
    --set device=cuda --set train.precision=$precision --set "data.train=[$HERE/data/train_00000]" \
    --set train.steps="$steps" --set train.log_interval=10 \
    --set "checkpoint.dir=$WORK/ck_$precision"
  grep -E "step=$steps/|done:" "$log" | tail -2 | tee -a "$SUMMARY"
done

# --- 5. rwkv-eval of the f32 run's weights: CPU, GPU f32, GPU bf16
weights=$WORK/ck_fp32/rwkv-final.safetensors
if [ -f "$weights" ]; then
  : > "$RESULTS/eval.log"
  declare -A nll=()
  for run in "cpu fp32" "cuda fp32" "cuda bf16"; do
    read -r device precision <<< "$run"
    out=$("$HERE/bin/rwkv-eval" --weights "$weights" --tokenizer bytes --lambada "$HERE/data/passages.jsonl" \
      --limit "${EVAL_PASSAGES:-64}" --device "$device" --precision "$precision" --json 2>> "$RESULTS/eval.log")
    rc=$?
    echo "$device $precision: $out" >> "$RESULTS/eval.log"
    ppl=$(echo "$out" | sed -n 's/.*"perplexity": \([0-9.e+-]*\).*/\1/p')
    if [ $rc -ne 0 ] || [ -z "$ppl" ]; then say "FAIL rwkv-eval --device $device --precision $precision (exit $rc): see eval.log"; status=1; continue; fi
    nll[$run]=$(awk -v p="$ppl" 'BEGIN { printf "%.9g", log(p) }')
  done
  if [ -n "${nll[cpu fp32]:-}" ]; then
    for run in "cuda fp32" "cuda bf16"; do
      [ -n "${nll[$run]:-}" ] || continue
      tol=$([ "$run" = "cuda bf16" ] && echo 3e-2 || echo 1e-4)
      verdict=$(awk -v g="${nll[$run]}" -v c="${nll[cpu fp32]}" -v t="$tol" \
        'BEGIN { r = (g > c ? g - c : c - g) / c; printf "%s %.3g", (r <= t ? "ok" : "FAIL"), r }')
      say "rwkv-eval $run: mean last-word nll ${nll[$run]} against the CPU's ${nll[cpu fp32]}: relative difference ${verdict#* } (allowed $tol) ${verdict%% *}"
      [ "${verdict%% *}" = ok ] || status=1
    done
  fi
else
  say "FAIL rwkv-eval: the f32 run left no weights ($weights)"
  status=1
fi
rm -rf "$WORK"
if [ $status -eq 0 ]; then say "run_gpu_check: passed"; else say "run_gpu_check: FAILED (see above)"; fi
exit $status
