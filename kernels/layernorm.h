// LayerNorm over the last dimension (RWKV uses eps = 1e-5, with weight and bias).
//   mean = sum(x)/C, rstd = 1/sqrt(sum((x-mean)^2)/C + eps), y = (x-mean)*rstd*weight + bias
#pragma once

#include "core/tensor.h"

namespace rwkv {

constexpr float kLayerNormEps = 1e-5f;

// x, y [N, C]; weight, bias [C]; mean, rstd [N] are saved for backward
// (always the parameter dtype: f32 on CUDA, f32/f64 on CPU).
void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y, Tensor& mean,
                       Tensor& rstd, float eps = kLayerNormEps);

// dx [N, C] += input gradient (it adds onto the residual stream's gradient);
// dweight, dbias [C] += (summed over rows in a fixed order).
void layernorm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dweight, Tensor& dbias);

}  // namespace rwkv
