#include "trainer/step_comm_volume.h"

#include <algorithm>

#include "core/error.h"
#include "parallel/comm_volume.h"
#include "parallel/data_parallel.h"
#include "parallel/flat_layout.h"
#include "trainer/frozen_parameters.h"
#include "trainer/parameters.h"
#include "trainer/precision_plan.h"
#include "trainer/rwkv4_partition.h"

namespace rwkv::trainer {

using parallel::all_gather_bytes_sent;
using parallel::all_reduce_bytes_sent;
using parallel::broadcast_bytes_sent;
using parallel::reduce_scatter_bytes_sent;

std::string StepCommBytes::str() const {
  return str_cat("tp=", tp, " dp=", dp, " pp=", pp, " mp=", mp, " world=", world);
}

StepCommBytes expected_step_bytes(const TrainConfig& config, const RankCoordinates& rank, const ParameterStore& grads) {
  const ParallelConfig& pc = config.parallel;
  const int tp = static_cast<int>(pc.tp), dp = static_cast<int>(pc.dp), pp = static_cast<int>(pc.pp);
  const int64_t N = config.train.micro_batch * config.model.ctx_len, C = config.model.n_embd, M = config.train.grad_accum;
  // e: f32 (gradients, scalars of the loss); a: the activations and their
  // gradients that tp and pp move ([N, C] and [N, C_l]), bf16 under mixed precision.
  const bool bf16 = config.train.precision == Precision::BF16;
  const int64_t e = 4, a = bf16 ? 2 : 4, Cl = C / tp;
  const bool first = rank.pp_rank == 0, last = rank.pp_rank == pp - 1;
  StepCommBytes b;
  if (tp > 1) {
    const auto [layer_begin, layer_end] =
        stage_layers(config.model.n_layer, pc.pp, rank.pp_rank, stage_boundaries(pc.stage_layers));
    const uint64_t ar_nc = all_reduce_bytes_sent(N * C, a, tp, rank.tp_rank);
    // Per block: forward ar + rs + ag, backward ag + 2 ar; the wholly frozen
    // blocks at the bottom of the first stage run no backward (train.freeze).
    const uint64_t ag = all_gather_bytes_sent(N * Cl, a, tp);
    uint64_t per_micro = static_cast<uint64_t>(layer_end - layer_begin) *
                         (3 * ar_nc + reduce_scatter_bytes_sent(N * Cl, a, tp) + 2 * ag);
    if (first && !config.train.freeze.empty()) {
      const Rwkv4Shape shape{config.model.n_layer, C, config.model.vocab_size, config.model.dim_ffn};
      const FrozenParameters frozen = frozen_parameters(config.train.freeze, shape, "");
      const int64_t skipped = frozen_leading_blocks(
          shape, [&](const std::string& n) { return frozen.contains(n); }, layer_begin, layer_end);
      per_micro -= static_cast<uint64_t>(skipped) * (2 * ar_nc + ag);
    }
    if (first) per_micro += ar_nc;
    if (last)
      per_micro += ar_nc + 2 * all_gather_bytes_sent(N, e, tp) + all_gather_bytes_sent(N, 4, tp) +
                   all_reduce_bytes_sent(N, e, tp, rank.tp_rank);
    b.tp = static_cast<uint64_t>(M) * per_micro;
    for (const NamedTensor& g : grads.entries())
      if (g.tp_partial_grad) b.tp += all_reduce_bytes_sent(g.value.numel(), e, tp, rank.tp_rank);
  }
  if (pp > 1) {
    b.pp = static_cast<uint64_t>(M * N * C * a) * ((last ? 0 : 1) + (first ? 0 : 1));
    b.pp += broadcast_bytes_sent(1, 8, pp, rank.pp_rank, pp - 1);
  }
  if (dp > 1) {
    b.dp = all_reduce_bytes_sent(1, 8, dp, rank.dp_rank);  // the loss
    const parallel::FlatLayout layout(grads);
    // g: a gradient element on the dp wire (parallel.grad_reduce_dtype).
    const int64_t g = pc.grad_reduce_dtype == Precision::BF16 ? 2 : e;
    if (pc.zero) {
      const parallel::ZeroPartition partition(layout, dp, parallel::kZeroAlign,
                                              parallel::bucket_elems_for(pc.bucket_bytes(), layout.dtype()));
      b.dp += reduce_scatter_bytes_sent(partition.shard_numel(), g, dp);
      // The parameter gather: f32 per bucket, but in bf16 for a bucket of
      // tensors that exist only as bf16 copies (under mixed precision ZeRO-1
      // releases the f32 master of every tensor with a copy).
      std::vector<bool> bf16_only(grads.entries().size(), false);
      const PrecisionPlan plan(config.train.precision);
      for (size_t t = 0; t < bf16_only.size() && bf16; ++t)
        bf16_only[t] = plan.param(grads.entries()[t].name).has_copy();
      const std::vector<bool> in_bf16 = parallel::bf16_gather_buckets(partition, layout, bf16_only);
      for (int bucket = 0; bucket < partition.buckets(); ++bucket)
        b.dp += all_gather_bytes_sent(partition.chunk_numel(bucket), in_bf16[static_cast<size_t>(bucket)] ? 2 : e, dp);
      b.dp += all_reduce_bytes_sent(1, 8, dp, rank.dp_rank);  // the grad norm's shard sums
    } else {
      const int64_t bucket = parallel::bucket_elems_for(pc.bucket_bytes(), layout.dtype());  // GradAllReducer's
      for (int64_t begin = 0; begin < layout.numel(); begin += bucket)
        b.dp += all_reduce_bytes_sent(std::min(layout.numel(), begin + bucket) - begin, g, dp, rank.dp_rank);
    }
  }
  if (tp * pp > 1) b.mp = all_reduce_bytes_sent(1, 8, tp * pp, rank.mp_rank);
  return b;
}

}  // namespace rwkv::trainer
