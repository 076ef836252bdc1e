// AdamW on this rank's ZeRO-1 shard only: the optimizer state holds S
// elements instead of N, the f32 master values of the owned elements with
// their moments m and v (Megatron-LM's distributed optimizer shards the
// masters the same way), and each rank updates just the elements it owns
// (ZeroPartition::pieces(rank): its chunk of every bucket), with the
// per-tensor rules of the replicated AdamWOptimizer (trainer/optimizer.h):
// weight decay where the tensor's `decay` is set, its lr multiplier,
// global-norm clipping folded into the update.
//
// One training step with ZeRO-1 on the dp group:
//
//   sync.reduce_mean(grads);                                    // grad_shard(): mean over dp, my shard
//   double norm = opt.step(params, sync.grad_shard(), lr, dp);  // norm^2 all-reduced over dp, clip, AdamW
//   sync.all_gather_params(opt.master_shard(), params, copies); // every rank: all updated weights
//
// The masters in params are then needed only where the model computes with
// them (tensors without a bf16 copy): with bf16 compute copies a rank may
// release the f32 masters of the copied tensors (Rwkv4Model::
// release_copied_masters), 4 bytes a parameter, and keep them only as shards.
//
// With tensor or pipeline parallelism the gradient norm also spans the other
// groups: compute local_sum_of_squares, reduce it where needed, and call
// update() with the clip factor.
//
// Checkpoints: the master shard, m and v are flat [S] tensors; pieces(rank)
// names which tensor elements each of their ranges belongs to (tensor,
// tensor_offset, length, shard_offset).
#pragma once

#include <cstdint>

#include "parallel/comm.h"
#include "parallel/data_parallel.h"
#include "trainer/optimizer.h"

namespace rwkv::parallel {

class ShardedAdamW {
 public:
  ShardedAdamW(const ParameterStore& params, const ZeroPartition& partition, int dp_rank,
               const AdamWSettings& settings);

  // sum over the shard of g^2 (padding is zero), in double, in a fixed order.
  double local_sum_of_squares(const Tensor& grad_shard) const;

  // The whole step for pure data parallelism: norm = sqrt(dp all-reduce of the
  // local sums), clip factor from settings.grad_clip, update(). Returns the norm.
  double step(const ParameterStore& params, const Tensor& grad_shard, double lr, Communicator& dp);

  // AdamW on the owned pieces of the master shard with gradient multiplier
  // grad_scale (the clip factor); counts one step. params: for each tensor's
  // decay and lr multiplier only (its values may be released).
  void update(const ParameterStore& params, const Tensor& grad_shard, double lr, float grad_scale);

  Tensor& master_shard() { return master_; }  // [S] the master values of the owned elements (zeros over padding)
  Tensor& first_moment() { return m_; }       // [S]
  Tensor& second_moment() { return v_; }      // [S]
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t steps) { step_ = steps; }

 private:
  ZeroPartition partition_;  // a copy: small (the piece lists), and no lifetime tie to ZeroOneSync
  int rank_;
  AdamWSettings settings_;
  Tensor master_, m_, v_;
  int64_t step_ = 0;
};

}  // namespace rwkv::parallel
