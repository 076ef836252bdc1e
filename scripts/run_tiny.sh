#!/usr/bin/env bash
# The main job on one CPU machine, from nothing: installs packages, builds,
# makes an English corpus from Debian text packages (no download), prepares
# binidx shards, trains configs/tiny.yaml (a 0.9M-parameter RWKV-4 over
# bytes) with validation, and samples text from the trained weights.
#
#   bash scripts/run_tiny.sh [extra rwkv-train flags, e.g. --set train.steps=500]
#
# Output: runs/tiny/ (data, checkpoints, final weights). Re-running resumes
# from the last committed checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=runs/tiny
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
BIN=build

mkdir -p "$RUN/data"
if [ ! -s "$RUN/corpus.jsonl.zst" ]; then
  bash scripts/data/make_offline_corpus.sh "$RUN/corpus.jsonl.zst"
fi
if [ ! -s "$RUN/data/train.idx" ] && ! ls "$RUN"/data/train_*.idx >/dev/null 2>&1; then
  # Hold out every 20th record for validation.
  zstd -dc "$RUN/corpus.jsonl.zst" | awk 'NR % 20 != 0' > "$RUN/train.jsonl"
  zstd -dc "$RUN/corpus.jsonl.zst" | awk 'NR % 20 == 0' > "$RUN/valid.jsonl"
  "$BIN/data/rwkv-data" prepare --tokenizer bytes --input "$RUN/train.jsonl" --output "$RUN/data/train"
  "$BIN/data/rwkv-data" prepare --tokenizer bytes --input "$RUN/valid.jsonl" --output "$RUN/data/valid"
fi

"$BIN/trainer/rwkv-train" --config configs/tiny.yaml \
  --set "data.train=[$RUN/data/train]" --set "data.valid=[$RUN/data/valid]" \
  --set train.eval_interval=250 --set "checkpoint.dir=$RUN/checkpoints" "$@"

echo "--- a sample from the trained model:"
"$BIN/trainer/rwkv-generate" --weights "$RUN/checkpoints/rwkv-final.safetensors" --tokenizer bytes \
  --prompt "The Debian project" --tokens 300 --temperature 0.8 --seed 1
