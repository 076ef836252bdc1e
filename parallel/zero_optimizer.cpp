#include "parallel/zero_optimizer.h"

#include <cmath>

#include "kernels/adamw.h"
#include "kernels/reduce.h"

namespace rwkv::parallel {

ShardedAdamW::ShardedAdamW(const ParameterStore& params, const ZeroPartition& partition, int dp_rank,
                           const AdamWSettings& settings)
    : partition_(partition), rank_(dp_rank), settings_(settings) {
  RWKV_CHECK(dp_rank >= 0 && dp_rank < partition.dp(), "ShardedAdamW: dp rank ", dp_rank, " outside [0, ",
             partition.dp(), ")");
  FlatLayout layout(params);
  RWKV_CHECK(layout.numel() == partition.numel(), "ShardedAdamW: the store has ", layout.numel(),
             " elements but the partition was built for ", partition.numel());
  m_ = Tensor::zeros({partition.shard_numel()}, layout.dtype(), layout.device());
  v_ = Tensor::zeros({partition.shard_numel()}, layout.dtype(), layout.device());
  master_ = Tensor::zeros({partition.shard_numel()}, layout.dtype(), layout.device());
  // The owned elements of the parameters as they are now (the init): my
  // chunk of every bucket, padding zeroed.
  for (int b = 0; b < partition_.buckets(); ++b) {
    const int64_t chunk = partition_.chunk_numel(b), begin = partition_.bucket_begin(b) + int64_t{rank_} * chunk;
    pack(params, layout, begin, begin + chunk, flat_slice(master_, partition_.shard_offset(b), chunk));
  }
}

double ShardedAdamW::local_sum_of_squares(const Tensor& grad_shard) const { return sum_of_squares(grad_shard); }

double ShardedAdamW::step(const ParameterStore& params, const Tensor& grad_shard, double lr, Communicator& dp) {
  // ||g||^2 = sum over dp ranks of the shard sums (shards are disjoint), added
  // in rank order by the communicator: every rank gets the same norm.
  Tensor sum = Tensor::from_vector<double>({local_sum_of_squares(grad_shard)}, {1});
  if (!dp.device().is_cpu()) sum = sum.to(dp.device());
  dp.all_reduce_sum(sum);
  const double norm = std::sqrt(sum.to_vector<double>()[0]);
  update(params, grad_shard, lr, clip_factor(norm, settings_.grad_clip));
  return norm;
}

void ShardedAdamW::update(const ParameterStore& params, const Tensor& grad_shard, double lr, float grad_scale) {
  const char* op = "ShardedAdamW::update";
  expect_shape(op, "grad_shard", grad_shard, {partition_.shard_numel()}, "[shard_numel]");
  ++step_;
  for (const ShardPiece& piece : partition_.pieces(rank_)) {
    const NamedTensor& p = params.entries()[static_cast<size_t>(piece.tensor)];  // decay, lr multiplier
    const int64_t at = piece.shard_offset;  // position in the shard's flat buffers
    Tensor param = flat_slice(master_, at, piece.length);
    Tensor m = flat_slice(m_, at, piece.length), v = flat_slice(v_, at, piece.length);
    adamw_update(param, flat_slice(grad_shard, at, piece.length), m, v,
                 adamw_config_for(p, settings_, lr, step_, grad_scale));
  }
}

}  // namespace rwkv::parallel
