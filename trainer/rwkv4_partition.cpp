#include "trainer/rwkv4_partition.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

Rwkv4Partition Rwkv4Partition::whole(const Rwkv4Shape& shape) {
  Rwkv4Partition p;
  p.layer_end = shape.n_layer;
  p.padded_vocab = shape.vocab_size;
  return p;
}

bool Rwkv4Partition::has_head(const Rwkv4Shape& shape) const { return layer_end == shape.n_layer; }

int64_t Rwkv4Partition::valid_vocab(int64_t vocab_size) const {
  return std::clamp<int64_t>(vocab_size - vocab_begin(), 0, local_vocab());
}

void Rwkv4Partition::validate(const Rwkv4Shape& s) const {
  RWKV_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "tensor-parallel rank ", tp_rank, " of ", tp_size);
  RWKV_CHECK(s.n_embd % tp_size == 0 && s.dim_ffn % tp_size == 0, "tensor parallelism tp=", tp_size,
             " must divide model.n_embd=", s.n_embd, " and the channel-mix width dim_ffn=", s.dim_ffn,
             "\n  ---> HINT: choose a tp that divides both");
  RWKV_CHECK(padded_vocab >= s.vocab_size && padded_vocab % tp_size == 0, "padded vocabulary ", padded_vocab,
             " must be >= vocab_size ", s.vocab_size, " and a multiple of tp=", tp_size);
  RWKV_CHECK(layer_begin >= 0 && layer_begin < layer_end && layer_end <= s.n_layer, "pipeline stage blocks [",
             layer_begin, ", ", layer_end, ") must be a non-empty range within the model's ", s.n_layer, " blocks");
}

int64_t padded_vocab_size(int64_t vocab_size, int64_t tp, int64_t multiple) {
  const int64_t m = std::lcm(std::max<int64_t>(1, tp), std::max<int64_t>(1, multiple));
  return (vocab_size + m - 1) / m * m;
}

std::pair<int64_t, int64_t> stage_layers(int64_t n_layer, int64_t stages, int64_t stage,
                                         const std::vector<int64_t>& boundaries) {
  RWKV_CHECK(stages >= 1 && stages <= n_layer, "pipeline parallelism pp=", stages, " needs at least one block per stage, but the model has n_layer=",
             n_layer, "\n  ---> HINT: use pp <= n_layer");
  RWKV_CHECK(stage >= 0 && stage < stages, "pipeline stage ", stage, " of ", stages);
  if (!boundaries.empty()) {
    RWKV_CHECK(static_cast<int64_t>(boundaries.size()) == stages + 1 && boundaries.front() == 0 &&
                   boundaries.back() == n_layer,
               "pipeline stage boundaries must be pp+1=", stages + 1, " numbers from 0 to n_layer=", n_layer);
    for (size_t i = 1; i < boundaries.size(); ++i)
      RWKV_CHECK(boundaries[i] > boundaries[i - 1], "pipeline stage boundaries must increase (every stage needs a block)");
    return {boundaries[static_cast<size_t>(stage)], boundaries[static_cast<size_t>(stage + 1)]};
  }
  const int64_t base = n_layer / stages, extra = n_layer % stages;
  const int64_t begin = stage * base + std::min(stage, extra);
  return {begin, begin + base + (stage < extra ? 1 : 0)};
}

std::vector<int64_t> stage_boundaries(const std::vector<int64_t>& blocks_per_stage) {
  std::vector<int64_t> boundaries;
  if (blocks_per_stage.empty()) return boundaries;
  boundaries.push_back(0);
  for (int64_t n : blocks_per_stage) boundaries.push_back(boundaries.back() + n);
  return boundaries;
}

}  // namespace rwkv
