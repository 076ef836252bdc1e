// AdamW, one parameter element at a time (decoupled weight decay as in
// Loshchilov & Hutter, applied like torch.optim.AdamW):
//   g = grad * grad_scale                      (grad_scale folds in clipping)
//   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
//   lr_t = lr * lr_multiplier
//   p = p * (1 - lr_t * wd)                    (only where decay is on)
//   p = p - lr_t * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)
#pragma once

#include <cmath>

#include "core/hd.h"
#include "kernels/adamw.h"
#include "kernels/fast_exp.h"

namespace rwkv {

struct AdamWStepConstants {
  float lr;              // lr * lr_multiplier
  float beta1, beta2, eps;
  float decay_factor;    // 1 - lr * wd, or 1 when the tensor is not decayed
  float bias_correction1;  // 1 - beta1^step
  float bias_correction2;  // 1 - beta2^step
  float grad_scale;
};

// The constants of one tensor's update at config.step, computed once on the
// host by either backend (so both round them identically): lr_t = lr *
// lr_multiplier; bias corrections 1 - beta^step evaluated in double.
inline AdamWStepConstants adamw_step_constants(const AdamWConfig& config) {
  AdamWStepConstants c{};
  c.lr = config.lr * config.lr_multiplier;
  c.beta1 = config.beta1;
  c.beta2 = config.beta2;
  c.eps = config.eps;
  c.decay_factor = config.decay ? 1.0f - c.lr * config.weight_decay : 1.0f;
  const double step = static_cast<double>(config.step);
  c.bias_correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(config.beta1), step));
  c.bias_correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(config.beta2), step));
  c.grad_scale = config.grad_scale;
  return c;
}

template <typename T>
RWKV_HD void adamw_element(T& p, T grad, T& m, T& v, const AdamWStepConstants& c) {
  T g = grad * T(c.grad_scale);
  m = T(c.beta1) * m + (T(1) - T(c.beta1)) * g;
  v = T(c.beta2) * v + (T(1) - T(c.beta2)) * g * g;
  T m_hat = m / T(c.bias_correction1);
  T v_hat = v / T(c.bias_correction2);
  p = p * T(c.decay_factor) - T(c.lr) * m_hat / (sqrt_t(v_hat) + T(c.eps));
}

}  // namespace rwkv
