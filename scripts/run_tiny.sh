#!/usr/bin/env bash
# The main job on one CPU machine, from nothing: installs packages, builds,
# makes an English corpus from Debian text packages (no download), prepares
# binidx shards, and trains configs/tiny.yaml (a 0.9M-parameter RWKV-4 over
# bytes) on 4 ranks under rwkv-launch: mpirun starts them as a tensor x
# pipeline layout (tp=2 x pp=2), the gRPC controller registers them, takes
# their heartbeats and metrics, decides and commits the checkpoints, writes
# TensorBoard events and serves a live page; the trainer validates as it goes.
# Then it exports the final checkpoint and samples text from it.
#
#   bash scripts/run_tiny.sh [extra rwkv-train flags, e.g. --set train.steps=500]
#
# Watch it from another terminal with the rwkvctl line it prints, or open the
# web page it prints. Output: runs/tiny/ (data, checkpoints, launch/ with the
# controller's state, logs and TensorBoard files). Re-running resumes from the
# last committed checkpoint. RUN=dir and BUILD_DIR=dir change the places.
# On fewer than 4 cores the ranks share them (mpirun --oversubscribe).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/tiny}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
export BUILD_DIR=${BUILD_DIR:-build}
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
BIN=$PWD/$BUILD_DIR
NP=4

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

# mpirun refuses root unless told; with fewer cores than ranks, waiting ranks
# must yield the core instead of spinning on it.
MPI_FLAGS="--oversubscribe"
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if [ "$(nproc)" -lt "$NP" ]; then MPI_FLAGS="$MPI_FLAGS --bind-to none --mca mpi_yield_when_idle 1"; fi
LAUNCHER="mpirun $MPI_FLAGS -np {np} -x RWKV_CONTROLLER -x RWKV_JOB -x RWKV_JOB_TOKEN -x RWKV_JOB_TOKEN_FILE -x RWKV_TLS_CA -x RWKV_ATTEMPT"

STATE=$RUN/launch
mkdir -p "$STATE"
rm -f "$STATE/controller.json"  # written again by this run's controller
touch "$STATE/ranks.log"
START=$(date +%s)
"$BIN/launch/rwkv-launch" --job tiny --np "$NP" --launcher "$LAUNCHER" --state-dir "$STATE" -- \
  "$BIN/trainer/rwkv-train" --config "$PWD/configs/tiny.yaml" \
  --set parallel.tp=2 --set parallel.pp=2 \
  --set "data.train=[$RUN/data/train]" --set "data.valid=[$RUN/data/valid]" \
  --set train.eval_interval=250 --set train.log_interval=50 --set "checkpoint.dir=$RUN/checkpoints" "$@" \
  > "$STATE/launch.out" 2>&1 &
LAUNCH=$!
TAIL=
trap 'kill $LAUNCH $TAIL 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 300); do
  [ -s "$STATE/controller.json" ] && break
  kill -0 $LAUNCH 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$STATE/controller.json" ]; then
  cat "$STATE/launch.out" >&2
  echo "run_tiny: rwkv-launch did not start the controller (see $STATE/controller.log)" >&2
  exit 1
fi
GRPC=$(sed -n 's/.*"grpc": *"\([^"]*\)".*/\1/p' "$STATE/controller.json")
HTTP=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$STATE/controller.json")
cat <<EOF
=== job tiny: $NP ranks (tp=2 x pp=2) under mpirun, controller at $GRPC
    watch:     RWKV_CONTROLLER=$GRPC RWKV_ADMIN_TOKEN_FILE=$STATE/admin.token $BIN/launch/rwkvctl watch
    status:    ... rwkvctl status | rwkvctl checkpoints | rwkvctl metrics --csv --name loss,val_loss
    web page:  http://$HTTP/?token=\$(cat $STATE/job.token)
    stop:      ... rwkvctl stop   (checkpoint, then exit; run this script again to resume)
    logs:      $STATE/ranks.log, $STATE/controller.log; TensorBoard: tensorboard --logdir $STATE/tensorboard
EOF
# The logging rank's progress and the launcher's news, here, until rwkv-launch ends.
tail --pid=$LAUNCH -q -n 0 -F "$STATE/launch.out" "$STATE/ranks.log" 2>/dev/null |
  grep --line-buffered -E 'step=|eval step|checkpoint:|resume:|launch:|ERROR|error' &
TAIL=$!
STATUS=0
wait $LAUNCH || STATUS=$?
wait $TAIL 2>/dev/null || true
if [ "$STATUS" -ne 0 ]; then
  echo "run_tiny: the job failed (rwkv-launch exit $STATUS); see $STATE/ranks.log and $STATE/controller.log" >&2
  exit "$STATUS"
fi
echo "=== finished in $(( $(date +%s) - START )) s; committed checkpoints:"
for marker in "$RUN"/checkpoints/step_*/COMMITTED; do [ -e "$marker" ] && echo "    $(dirname "$marker")"; done
LAST=$(ls -d "$RUN"/checkpoints/step_*/COMMITTED 2>/dev/null | sort | tail -n 1 | xargs -r dirname)
grep -E 'step=[0-9]+/' "$STATE/ranks.log" | tail -n 1 | sed 's/^.*\(step=\)/final: \1/'
grep -E 'eval step=' "$STATE/ranks.log" | tail -n 1 | sed 's/^.*\(eval step=\)/final: \1/'

echo "--- a sample from the trained model (exported from $LAST):"
"$BIN/trainer/rwkv-ckpt" export "$LAST" --out "$RUN/rwkv-final.safetensors" >/dev/null
"$BIN/trainer/rwkv-generate" --weights "$RUN/rwkv-final.safetensors" --tokenizer bytes \
  --prompt "The Debian project" --tokens 300 --temperature 0.8 --top-p 0.9 --seed 1
echo
