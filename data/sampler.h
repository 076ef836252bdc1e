// Samplers: which window of the token stream each row of each batch reads.
// A sample is ctx_len + 1 consecutive tokens (inputs and next-token targets).
//
// Global sample index. With G = global_batch, mb = micro_batch, dp = dp_size,
// and A = G / (mb * dp) gradient-accumulation micro-steps a step, row `row`
// of micro-step `m` on data-parallel rank `r` at optimizer step `s` reads
//
//     g = s*G + (m*mb + row)*dp + r
//
// Over (m, row, r) this covers exactly [s*G, (s+1)*G), whatever dp is, so the
// global batch of a step is the same set of windows for dp = 1, 2, 4, ...
// and a run resumed with another dp sees the same data. With A = 1 it is
// RWKV-LM's own order (ii - 1 = idx * world_size + rank).
//
// MagicPrimeSampler (training; RWKV-LM's): with p the magic prime
// (magic_prime.h) and factor = floor(p * (sqrt(5) - 1) / 2),
//
//     chunk(g) = (factor * (1 + g)^3) mod p,   window start = chunk(g) * ctx_len
//
// Since p is prime with p % 3 == 2, x -> factor * x^3 permutes Z_p, so every
// run of p consecutive samples (an epoch) visits each of the p chunks exactly
// once, in a scattered order, with no state: resuming needs the step alone.
// The arithmetic is done modulo p in 128 bits, so it never overflows.
//
// SequentialSampler (evaluation): sample g reads window g, start g * ctx_len,
// for g < floor((T - 1) / ctx_len); rows past the end are padded.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "data/token_dataset.h"

namespace rwkv::data {

struct BatchLayout {
  int64_t ctx_len = 0;       // T; a sample holds T + 1 tokens
  int64_t micro_batch = 0;   // rows one rank runs in one forward/backward
  int64_t global_batch = 0;  // rows in one optimizer step over all dp ranks
  int64_t dp_size = 1;       // data-parallel ranks

  int64_t grad_accum() const { return global_batch / (micro_batch * dp_size); }
  // Throws with every factor named unless global_batch = micro_batch * dp_size * A.
  void validate() const;
};

// g(step, micro_step, dp_rank, row) as defined above; checks every argument's range.
uint64_t global_sample_index(const BatchLayout& layout, int64_t step, int64_t micro_step, int64_t dp_rank, int64_t row);

class MagicPrimeSampler {
 public:
  // magic_prime = 0: the largest valid one for the dataset (magic_prime_for).
  MagicPrimeSampler(const TokenDataset& data, BatchLayout layout, uint64_t magic_prime = 0);

  uint64_t magic_prime() const { return prime_; }
  uint64_t factor() const { return factor_; }
  const BatchLayout& layout() const { return layout_; }
  // Samples in one epoch (= p) and the steps that takes (fractional).
  uint64_t samples_per_epoch() const { return prime_; }

  uint64_t chunk(uint64_t global_sample) const;
  int64_t window_start(uint64_t global_sample) const { return static_cast<int64_t>(chunk(global_sample)) * layout_.ctx_len; }

  // tokens: [micro_batch, ctx_len + 1], row-major.
  void fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const;
  Tensor batch(int64_t step, int64_t micro_step, int64_t dp_rank) const;  // i32 [micro_batch, ctx_len + 1]

 private:
  const TokenDataset& data_;
  BatchLayout layout_;
  uint64_t prime_ = 0;
  uint64_t factor_ = 0;
};

class SequentialSampler {
 public:
  SequentialSampler(const TokenDataset& data, BatchLayout layout);

  int64_t num_windows() const { return num_windows_; }
  int64_t num_steps() const { return (num_windows_ + layout_.global_batch - 1) / layout_.global_batch; }
  const BatchLayout& layout() const { return layout_; }

  // tokens: [micro_batch, ctx_len + 1]. Returns the number of rows holding real
  // windows (always a prefix); the rest are filled with pad_id.
  int64_t fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens, int32_t pad_id = 0) const;

 private:
  const TokenDataset& data_;
  BatchLayout layout_;
  int64_t num_windows_ = 0;
};

}  // namespace rwkv::data
