// RWKV-4 as an RNN: a chunk of tokens (one or many) continues from a carried
// state, giving the same logits as the sequence forward over the whole text.
// This is how text is generated (rwkv-generate) and how long prompts are fed.
//
// State per block, each [B, C]: the last ln1 output (time-mix token shift),
// the WKV accumulators aa, bb, pp, and the last ln2 output (channel-mix shift).
#pragma once

#include <vector>

#include "core/tensor.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

struct Rwkv4State {
  std::vector<Tensor> att_shift;  // per block [B, C]
  std::vector<Tensor> wkv;        // per block [3, B, C]: aa, bb, pp
  std::vector<Tensor> ffn_shift;  // per block [B, C]

  // The state before any token: zeros, and pp = -1e38 (an empty WKV sum).
  static Rwkv4State fresh(const Rwkv4Shape& shape, int64_t batch, DType dtype, Device device = Device::cpu());
};

// tokens i32 [B, T] (on any device); logits [B, T, V] out; state updated to
// follow the last token. Runs where the parameters are (the state and logits
// live there too): f32 or f64 parameters, on the CPU or a GPU.
void rwkv4_forward_recurrent(const Rwkv4Tensors& params, const Rwkv4Shape& shape, const Tensor& tokens,
                             Rwkv4State& state, Tensor& logits);

}  // namespace rwkv
