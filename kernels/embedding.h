// Token embedding lookup and its scatter-add gradient.
#pragma once

#include "core/tensor.h"

namespace rwkv {

// tokens i32 [N] (on the same device), weight [V, C], out [N, C]. An id of -1
// means the row lives elsewhere (vocab-parallel embedding): its output row is
// zero and backward skips it.
// A token id outside [0, V) is an error on the CPU. The CUDA kernel cannot
// raise one without a host sync, so it writes zeros for such rows; the data
// pipeline validates every token id against the vocabulary before it gets here.
void embedding_forward(const Tensor& tokens, const Tensor& weight, Tensor& out);

// dweight [V, C] += scatter of dout [N, C] by token. The CPU kernel sums each
// row's contributions in token order (deterministic for any thread count).
void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dweight);

}  // namespace rwkv
