// Token shift ("time mix"): for each mix vector m_j,
//   out_j[b, t] = x[b, t] * m_j + x[b, t-1] * (1 - m_j),  x[b, -1] = shift_state[b] or 0.
// The time mix uses three (k, v, r), the channel mix two (k, r); doing them in
// one call reads x once.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace rwkv {

// x [B, T, C]; mixes: 1..3 tensors [C]; outs: as many tensors [B, T, C].
// shift_state: undefined (zeros) or [B, C], the token before x[:, 0].
void token_shift_forward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& outs,
                         const Tensor& shift_state = Tensor());

// douts: gradients of outs. dx [B, T, C] is written (it must not be one of
// the douts: a row's gradient reads its successor's dout); dmixes [C] are
// accumulated (+=). The gradient into shift_state is not produced (training
// always starts from zeros).
void token_shift_backward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& douts,
                          Tensor& dx, const std::vector<Tensor>& dmixes);

}  // namespace rwkv
