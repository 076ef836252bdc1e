// Embedding on the CPU. Backward is a scatter-add: rows of dout land on the
// rows of dweight named by their tokens. Threads own channel blocks and walk
// the tokens in order, so repeated tokens are summed in a fixed order.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"

namespace rwkv::cpu {

namespace {
// -1 means "no row on this rank" (vocab-parallel embedding: the token's row
// lives on another tensor-parallel rank); anything else must be in range.
void check_token_ids(const char* op, const int32_t* tokens, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    RWKV_CHECK(tokens[n] >= -1 && tokens[n] < V, op, ": token id ", tokens[n], " at position ", n,
               " is outside the vocabulary [0, ", V, ")\n  ---> HINT: the data was tokenized with a larger "
               "vocabulary than model.vocab_size");
  }
}
}  // namespace

void embedding_forward(const Tensor& tokens, const Tensor& weight, Tensor& out) {
  const int64_t N = tokens.dim(0), V = weight.dim(0), C = weight.dim(1);
  const int32_t* tp = tokens.data<int32_t>();
  check_token_ids("embedding_forward", tp, N, V);
  visit_float(weight.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* wp = weight.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      if (tp[n] < 0) {
        std::memset(op + n * C, 0, static_cast<size_t>(C) * sizeof(T));
      } else {
        std::memcpy(op + n * C, wp + tp[n] * C, static_cast<size_t>(C) * sizeof(T));
      }
    }
  });
}

void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dweight) {
  const int64_t N = tokens.dim(0), V = dweight.dim(0), C = dweight.dim(1);
  const int32_t* tp = tokens.data<int32_t>();
  check_token_ids("embedding_backward", tp, N, V);
  visit_float(dweight.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* dp = dout.data<T>();
    T* gp = dweight.data<T>();
    const int64_t blocks = (C + kReduceChannelBlock - 1) / kReduceChannelBlock;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kReduceChannelBlock, c1 = std::min(C, c0 + kReduceChannelBlock);
      for (int64_t n = 0; n < N; ++n) {
        if (tp[n] < 0) continue;
        T* dst = gp + tp[n] * C;
        const T* src = dp + n * C;
        for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    }
  });
}

}  // namespace rwkv::cpu
