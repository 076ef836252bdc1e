// Which part of RWKV-4 one rank holds: a pipeline stage's contiguous blocks,
// and within them a tensor-parallel slice of every matrix (DESIGN.md section 5).
//
// Tensor parallelism (tp ranks, C_l = C/tp channels and F_l = F/tp hidden units each):
//   att.key, att.value, att.receptance [C, C]   split by output row    -> [C_l, C]
//   att.time_decay, att.time_first [C]          the same channels       -> [C_l]
//   att.output [C, C]                           split by input column   -> [C, C_l]
//   ffn.key [F, C]                              split by output row     -> [F_l, C]
//   ffn.value [C, F]                            split by input column   -> [C, F_l]
//   ffn.receptance [C, C]                       split by output row     -> [C_l, C]
//   emb, head [V, C]                            split by vocabulary row -> [V_p/tp, C]
//   LayerNorms, time_mix vectors                replicated
// The vocabulary is padded to V_p, a multiple of tp (and of
// parallel.vocab_pad_multiple); padded rows are never looked up or predicted,
// stay zero, and are not saved (global shapes keep V).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv {

struct Rwkv4Shape;

struct Rwkv4Partition {
  int64_t tp_size = 1, tp_rank = 0;
  int64_t layer_begin = 0, layer_end = 0;  // this stage's blocks: [layer_begin, layer_end)
  int64_t padded_vocab = 0;                // V_p

  // The whole model on one rank.
  static Rwkv4Partition whole(const Rwkv4Shape& shape);
  // Checks divisibility and ranges; errors name every factor.
  void validate(const Rwkv4Shape& shape) const;

  bool has_embedding() const { return layer_begin == 0; }
  bool has_head(const Rwkv4Shape& shape) const;
  int64_t local_vocab() const { return padded_vocab / tp_size; }
  int64_t vocab_begin() const { return tp_rank * local_vocab(); }
  // Real (unpadded) vocabulary rows in this rank's slice.
  int64_t valid_vocab(int64_t vocab_size) const;
};

// V rounded up to a multiple of lcm(tp, multiple).
int64_t padded_vocab_size(int64_t vocab_size, int64_t tp, int64_t multiple);

// Blocks of pipeline stage `stage` of `stages`: an even split (earlier stages
// take one extra block when L does not divide), or the given boundaries
// (stages + 1 increasing numbers from 0 to L, e.g. {0, 3, 8}).
std::pair<int64_t, int64_t> stage_layers(int64_t n_layer, int64_t stages, int64_t stage,
                                         const std::vector<int64_t>& boundaries = {});
// Block counts per stage (parallel.stage_layers, e.g. {3, 5}) as the
// boundaries stage_layers takes ({0, 3, 8}); {} (an even split) for {}.
std::vector<int64_t> stage_boundaries(const std::vector<int64_t>& blocks_per_stage);

}  // namespace rwkv
