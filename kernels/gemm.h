// Matrix products. Every linear layer of RWKV-4 is y = x W^T with W [out, in]
// (no biases), applied to activations viewed as rows [N = B*T, in].
//
//   CPU : OpenBLAS sgemm/dgemm; f32 or f64, all three tensors the same dtype.
//   CUDA: cuBLAS with fp32 accumulation; A and B f32 or bf16 (bf16 runs on
//         tensor cores), C f32 or bf16.
#pragma once

#include "core/tensor.h"

namespace rwkv {

// c[M, N] = alpha * op(a) @ op(b) + beta * c, where op(x) is x or x^T.
void matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, float alpha = 1.0f,
            float beta = 0.0f);

// y [N, out] = x [N, in] @ weight [out, in]^T
void linear_forward(const Tensor& x, const Tensor& weight, Tensor& y);

// dx [N, in] = dy @ weight (accumulated into dx when accumulate_dx),
// dweight [out, in] += dy^T @ x (always accumulated: gradient accumulation).
// Either output may be an undefined tensor to skip it.
void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor& dx, Tensor& dweight,
                     bool accumulate_dx = false);

}  // namespace rwkv
