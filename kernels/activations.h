// Gates and activations of RWKV-4 (maths in kernels/elementwise_math.h).
// All tensors one shape, any shape.
#pragma once

#include "core/tensor.h"

namespace rwkv {

// out = sigmoid(r) * y (receptance gate of both mixes).
void sigmoid_gate_forward(const Tensor& r, const Tensor& y, Tensor& out);
// dr = dout * y * s (1 - s), dy = dout * s; both written.
void sigmoid_gate_backward(const Tensor& r, const Tensor& y, const Tensor& dout, Tensor& dr, Tensor& dy);

// out = relu(x)^2 (channel-mix key activation).
void squared_relu_forward(const Tensor& x, Tensor& out);
// dx = 2 relu(x) dout; written (dx may be the same tensor as dout).
void squared_relu_backward(const Tensor& x, const Tensor& dout, Tensor& dx);

}  // namespace rwkv
