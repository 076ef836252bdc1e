// AdamW on one parameter tensor (maths in kernels/adamw_math.h).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace rwkv {

struct AdamWConfig {
  float lr = 0.0f;             // the schedule's lr at this step
  float lr_multiplier = 1.0f;  // per tensor: time_decay x2, time_first x3 in the reference
  float beta1 = 0.9f;
  float beta2 = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decay = false;          // per tensor: only 2-D weights are decayed in the reference
  int64_t step = 1;            // 1-based, for bias correction
  float grad_scale = 1.0f;     // multiplies the gradient (gradient clipping folds in here)
};

// param, grad, m, v: one shape, f32 (f64 allowed on CPU). param_copy: optional
// (undefined to skip) bf16 or f32 tensor that receives the updated parameter,
// the compute copy of mixed precision.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config,
                  Tensor param_copy = Tensor());

}  // namespace rwkv
