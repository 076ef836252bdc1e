// WKV-4: the RWKV-4 time-mixing recurrence (maths in kernels/wkv4_math.h).
// Shapes: time_decay, time_first [C] (always f32/f64, the parameter dtype);
// k, v, y, gy, gk, gv [B, T, C]. On CUDA k/v/y/gy/gk/gv may be bf16; the
// maths runs in fp32.
#pragma once

#include "core/tensor.h"

namespace rwkv {

// y = wkv(w = -exp(time_decay), u = time_first, k, v).
// state: undefined for a fresh sequence, or [3, B, C] holding (aa, bb, pp) on
// entry and updated to the state after the last token (recurrent inference
// and chunked sequences). Its dtype is the parameter dtype.
void wkv4_forward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v, Tensor& y,
                  Tensor state = Tensor());

// Gradients from gy = dL/dy: g_time_decay and g_time_first [C] are
// accumulated (+=, summed over the batch in a fixed order); gk and gv are
// written. No saved activations are needed beyond k and v: the kernel re-runs
// the forward scan, parking y and the log-denominators in gk and gv when they
// are f32/f64 (bf16 gradients on CUDA use an fp32 workspace instead).
void wkv4_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
                   const Tensor& gy, Tensor& g_time_decay, Tensor& g_time_first, Tensor& gk, Tensor& gv);

}  // namespace rwkv
