#!/usr/bin/env bash
# The main job on one CPU machine, from nothing: installs packages, builds,
# makes an English corpus from Debian text packages (no download), prepares
# binidx shards, and trains configs/tiny.yaml (a 0.9M-parameter RWKV-4 over
# bytes) under rwkv-launch: the gRPC controller takes heartbeats and metrics,
# commits the checkpoints, writes TensorBoard events and serves a live page;
# the trainer validates as it goes. Then it samples text from the weights.
#
#   bash scripts/run_tiny.sh [extra rwkv-train flags, e.g. --set train.steps=500]
#
# Output: runs/tiny/ (data, checkpoints, launch/ with the controller's state,
# logs and TensorBoard files). Re-running resumes from the last committed checkpoint.
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
if ! ls "$RUN"/data/train_*.idx >/dev/null 2>&1; then
  # Hold out every 20th record for validation.
  zstd -dc "$RUN/corpus.jsonl.zst" | awk 'NR % 20 != 0' > "$RUN/train.jsonl"
  zstd -dc "$RUN/corpus.jsonl.zst" | awk 'NR % 20 == 0' > "$RUN/valid.jsonl"
  "$BIN/data/rwkv-data" prepare --tokenizer bytes --input "$RUN/train.jsonl" --output "$RUN/data/train" --overwrite
  "$BIN/data/rwkv-data" prepare --tokenizer bytes --input "$RUN/valid.jsonl" --output "$RUN/data/valid" --overwrite
fi

# The trainer's log goes to $RUN/launch/ranks.log; follow it here.
mkdir -p "$RUN/launch"
touch "$RUN/launch/ranks.log"
tail -n 0 -F "$RUN/launch/ranks.log" 2>/dev/null &
TAIL=$!
trap 'kill $TAIL 2>/dev/null || true' EXIT
"$BIN/launch/rwkv-launch" --job tiny --np 1 --launcher local --state-dir "$RUN/launch" -- \
  "$PWD/$BIN/trainer/rwkv-train" --config configs/tiny.yaml \
  --set "data.train=[$RUN/data/train]" --set "data.valid=[$RUN/data/valid]" \
  --set train.eval_interval=250 --set "checkpoint.dir=$RUN/checkpoints" "$@"
sleep 1

echo "--- a sample from the trained model:"
"$BIN/trainer/rwkv-generate" --weights "$RUN/checkpoints/rwkv-final.safetensors" --tokenizer bytes \
  --prompt "The Debian project" --tokens 300 --temperature 0.8 --seed 1
echo "--- TensorBoard event files: $RUN/launch/tensorboard (tensorboard --logdir $RUN/launch/tensorboard)"
