#include "data/sampler.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "data/magic_prime.h"

namespace rwkv::data {

void BatchLayout::validate() const {
  RWKV_CHECK(ctx_len >= 1 && micro_batch >= 1 && dp_size >= 1 && global_batch >= 1, "batch layout: ctx_len=", ctx_len,
             " micro_batch=", micro_batch, " global_batch=", global_batch, " dp_size=", dp_size,
             ": every factor must be at least 1");
  RWKV_CHECK(global_batch % (micro_batch * dp_size) == 0, "batch layout: global_batch=", global_batch,
             " is not a multiple of micro_batch=", micro_batch, " x dp_size=", dp_size, " = ", micro_batch * dp_size,
             "\n  ---> HINT: choose global_batch = micro_batch x dp_size x grad_accum, e.g. ",
             micro_batch * dp_size * std::max<int64_t>(1, global_batch / (micro_batch * dp_size)));
}

uint64_t global_sample_index(const BatchLayout& layout, int64_t step, int64_t micro_step, int64_t dp_rank, int64_t row) {
  RWKV_CHECK(step >= 0, "sampler: step ", step, " is negative");
  RWKV_CHECK(micro_step >= 0 && micro_step < layout.grad_accum(), "sampler: micro_step ", micro_step,
             " outside [0, ", layout.grad_accum(), ") (global_batch=", layout.global_batch,
             " / (micro_batch=", layout.micro_batch, " x dp_size=", layout.dp_size, "))");
  RWKV_CHECK(dp_rank >= 0 && dp_rank < layout.dp_size, "sampler: dp_rank ", dp_rank, " outside [0, ", layout.dp_size, ")");
  RWKV_CHECK(row >= 0 && row < layout.micro_batch, "sampler: row ", row, " outside [0, ", layout.micro_batch, ")");
  return static_cast<uint64_t>(step) * static_cast<uint64_t>(layout.global_batch) +
         static_cast<uint64_t>((micro_step * layout.micro_batch + row) * layout.dp_size + dp_rank);
}

// ---- MagicPrimeSampler -------------------------------------------------------------

MagicPrimeSampler::MagicPrimeSampler(const TokenDataset& data, BatchLayout layout, uint64_t magic_prime)
    : data_(data), layout_(layout) {
  layout_.validate();
  const uint64_t tokens = static_cast<uint64_t>(data.num_tokens());
  const uint64_t ctx = static_cast<uint64_t>(layout_.ctx_len);
  const uint64_t best = magic_prime_for(tokens, ctx);
  if (magic_prime == 0) {
    RWKV_CHECK(best > 0, "sampler: the dataset has ", tokens, " tokens, too few for ctx_len=", ctx,
               ": the magic-prime sampler needs at least 3 x ctx_len tokens\n  ---> HINT: use more data or a shorter ctx_len");
    prime_ = best;
  } else {
    RWKV_CHECK(is_prime(magic_prime) && magic_prime % 3 == 2, "sampler: magic_prime=", magic_prime,
               " must be a prime with magic_prime % 3 == 2\n  ---> HINT: `rwkv-data magic-prime --data ... --ctx-len ",
               ctx, "` prints ", best);
    RWKV_CHECK(static_cast<uint128>(magic_prime) * ctx + 1 <= tokens, "sampler: magic_prime=", magic_prime,
               " x ctx_len=", ctx, " + 1 exceeds the ", tokens, " tokens of the dataset (the last window would run past "
               "the end)\n  ---> HINT: the prime belongs to a larger dataset; this one's is ", best);
    if (static_cast<double>(magic_prime) < 0.99 * static_cast<double>(tokens / ctx)) {
      log_warn("sampler: magic_prime=", magic_prime, " covers only ", magic_prime * ctx, " of ", tokens,
               " tokens; the largest valid prime is ", best);
    }
    prime_ = magic_prime;
  }
  factor_ = magic_prime_factor(prime_);
}

uint64_t MagicPrimeSampler::chunk(uint64_t global_sample) const { return magic_prime_chunk(prime_, factor_, global_sample); }

void MagicPrimeSampler::fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const {
  const int64_t width = layout_.ctx_len + 1;
  for (int64_t row = 0; row < layout_.micro_batch; ++row) {
    uint64_t g = global_sample_index(layout_, step, micro_step, dp_rank, row);
    data_.read(window_start(g), width, tokens + row * width);
  }
}

Tensor MagicPrimeSampler::batch(int64_t step, int64_t micro_step, int64_t dp_rank) const {
  Tensor out = Tensor::empty({layout_.micro_batch, layout_.ctx_len + 1}, DType::I32);
  fill(step, micro_step, dp_rank, out.data<int32_t>());
  return out;
}

// ---- SequentialSampler -------------------------------------------------------------

SequentialSampler::SequentialSampler(const TokenDataset& data, BatchLayout layout) : data_(data), layout_(layout) {
  layout_.validate();
  num_windows_ = (data.num_tokens() - 1) / layout_.ctx_len;
  RWKV_CHECK(num_windows_ > 0, "sampler: the dataset has ", data.num_tokens(), " tokens, fewer than ctx_len + 1 = ",
             layout_.ctx_len + 1, "\n  ---> HINT: use more evaluation data or a shorter ctx_len");
}

int64_t SequentialSampler::fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens, int32_t pad_id) const {
  const int64_t width = layout_.ctx_len + 1;
  int64_t valid = 0;
  for (int64_t row = 0; row < layout_.micro_batch; ++row) {
    uint64_t g = global_sample_index(layout_, step, micro_step, dp_rank, row);
    int32_t* out = tokens + row * width;
    if (g < static_cast<uint64_t>(num_windows_)) {
      data_.read(static_cast<int64_t>(g) * layout_.ctx_len, width, out);
      ++valid;
    } else {
      std::fill(out, out + width, pad_id);
    }
  }
  return valid;
}

}  // namespace rwkv::data
