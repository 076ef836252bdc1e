// Per-element maths of the small RWKV-4 ops, shared by both backends. Each
// forward sits beside its derivative so they are read (and checked) together.
#pragma once

#include "core/hd.h"
#include "kernels/fast_exp.h"

namespace rwkv {

// Token shift ("time mix"): blends this token's input x_t with the previous
// token's x_{t-1} (zero, or the carried state, at t = 0):
//   out = x*mix + prev*(1-mix)
//   d x_t += d*mix,  d prev += d*(1-mix),  d mix += d*(x - prev)
template <typename T>
RWKV_HD T token_shift_mix(T x, T prev, T mix) { return x * mix + prev * (T(1) - mix); }

// Sigmoid, written so that exp never overflows: for x < 0 it is e^x / (1 + e^x).
template <typename T>
RWKV_HD T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exact_exp(-x));
  T e = exact_exp(x);
  return e / (T(1) + e);
}

// Gate: out = sigmoid(r) * y;  dr = d * y * s(1-s),  dy = d * s.
template <typename T>
RWKV_HD T sigmoid_gate(T r, T y) { return sigmoid(r) * y; }
template <typename T>
RWKV_HD void sigmoid_gate_grad(T r, T y, T d, T& dr, T& dy) {
  T s = sigmoid(r);
  dr = d * y * s * (T(1) - s);
  dy = d * s;
}

// Squared ReLU of the channel mix: out = max(x, 0)^2;  dx = 2 max(x, 0) d.
template <typename T>
RWKV_HD T squared_relu(T x) {
  T r = x > T(0) ? x : T(0);
  return r * r;
}
template <typename T>
RWKV_HD T squared_relu_grad(T x, T d) { return x > T(0) ? T(2) * x * d : T(0); }

// LayerNorm of one element given its row's mean and reciprocal std:
//   xhat = (x - mean) * rstd, y = xhat * weight + bias.
// Backward per row (N = channels): with dxhat = dy * weight,
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
template <typename T>
RWKV_HD T layernorm_apply(T x, T mean, T rstd, T weight, T bias) { return (x - mean) * rstd * weight + bias; }

}  // namespace rwkv
