// Reductions and in-place helpers over whole tensors: gradient norms and
// clipping, scaling, residual adds, dtype casts.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace rwkv {

// sum(x^2) accumulated in double, in a fixed order independent of threads.
double sum_of_squares(const Tensor& x);

// sum_of_squares of each tensor (all on one device), bit for bit, with one
// host synchronisation for the whole list on a GPU instead of one per tensor:
// the gradient norm of a step reads hundreds of tensors.
std::vector<double> sums_of_squares(const std::vector<Tensor>& xs);

// sqrt(sum over tensors of sum(x^2)); the global gradient norm.
double global_norm(const std::vector<Tensor>& tensors);

// The factor that brings the norm down to max_norm: min(1, max_norm / (norm + 1e-6)).
// max_norm <= 0 disables clipping (factor 1).
float clip_factor(double norm, float max_norm);

// acc [1] f64 += sum(values) / values.numel(), the sum in double; values f32
// or f64 [N], on acc's device. On the CPU the sum runs in index order (the
// same bits as summing on the host); on CUDA in a fixed tree. No host copy:
// how a step's loss is added up without synchronising per micro-batch.
void add_mean_(Tensor& acc, const Tensor& values);

// Multiplies every tensor by factor.
void scale_(Tensor& x, float factor);

// Clips a set of gradients in place to a global norm of max_norm; returns the
// norm before clipping.
double clip_global_norm_(std::vector<Tensor>& grads, float max_norm);

// a += b (same shape and dtype).
void add_(Tensor& a, const Tensor& b);

// dst = src converted (f32 <-> bf16 <-> f64 on CPU; f32 <-> bf16 on CUDA).
void cast(const Tensor& src, Tensor& dst);

}  // namespace rwkv
