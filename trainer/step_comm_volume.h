// The bytes one rank sends in one optimizer step of rwkv-train, per process
// group, from the layout alone: what the byte counters must show (tested for
// every layout) and what the bench and the planner print.
//
// With N = micro_batch x ctx_len tokens per micro-batch, M = grad_accum
// micro-batches, C = n_embd, C_l = C / tp, e = 4 bytes (f32), a = the bytes of
// an activation (4, or 2 under bf16 mixed precision), and ar / rs / ag the
// per-rank formulas of parallel/comm_volume.h (in a-byte elements where the
// size is N C or N C_l, else in e-byte ones):
//
//   tp, per micro-batch:  every block of this stage   3 ar(N C) + rs(N C_l) + 2 ag(N C_l)
//                         first stage (embedding)      + ar(N C)
//                         last stage (head, CE)        + ar(N C) + 2 ag(N) + ag(N, 4-byte ids) + ar(N)
//       once per step:    the tp-partial gradients     + sum over them of ar(numel)
//   pp, per micro-batch:  activations [N, C] to the next stage, their gradients back:
//                         N C a x ([not last stage] + [not first stage])
//       once per step:    the loss, broadcast from the last stage: broadcast(1 double)
//   dp, once per step:    plain:  sum over 25 MiB buckets of ar(bucket) of the flat gradient
//                         ZeRO-1: rs of the shard, (dp - 1) S e, and the all-gather of each
//                         bucket's chunk, in bf16 for a bucket of bf16-copied tensors alone
//                         under mixed precision (parallel::bf16_gather_buckets), else in f32
//                         the loss averaged: ar(1 double); with ZeRO the grad norm's ar(1 double)
//   mp (tp x pp):         the grad norm's sum of squares: ar(1 double)
#pragma once

#include <cstdint>
#include <string>

#include "trainer/config.h"

namespace rwkv {
class ParameterStore;
}

namespace rwkv::trainer {

struct StepCommBytes {
  uint64_t tp = 0, dp = 0, pp = 0, mp = 0, world = 0;
  uint64_t total() const { return tp + dp + pp + mp + world; }
  bool operator==(const StepCommBytes&) const = default;
  std::string str() const;  // "tp=.. dp=.. pp=.. mp=.. world=.."
};

// This rank's coordinates in its groups.
struct RankCoordinates {
  int tp_rank = 0, dp_rank = 0, pp_rank = 0, mp_rank = 0;
};

// grads: this rank's gradient store (its tp-partial tensors and flat size).
StepCommBytes expected_step_bytes(const TrainConfig& config, const RankCoordinates& rank, const ParameterStore& grads);

}  // namespace rwkv::trainer
