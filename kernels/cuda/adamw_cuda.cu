// AdamW on CUDA: one thread per element (grid-stride), the shared
// adamw_element of kernels/adamw_math.h in fp32. param, grad, m, v are f32;
// param_copy (optional) f32 or bf16 receives the updated parameter, the
// compute copy of mixed precision. Memory-bound: reads 4 and writes 3 (or 4)
// values per element.
#include "kernels/adamw_math.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rwkv::cuda {

namespace {

// Per element (constants computed once on the host by adamw_step_constants):
//   g = grad * grad_scale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
//   p = p * decay_factor - lr_t * (m / bc1) / (sqrt(v / bc2) + eps);  copy = p
template <typename C>
__global__ void adamw_kernel(int64_t n, float* __restrict__ param, const float* __restrict__ grad,
                             float* __restrict__ m, float* __restrict__ v, C* __restrict__ param_copy,
                             AdamWStepConstants constants) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    float p = param[i], mi = m[i], vi = v[i];
    adamw_element(p, grad[i], mi, vi, constants);
    param[i] = p;
    m[i] = mi;
    v[i] = vi;
    if (param_copy != nullptr) param_copy[i] = store_from_float<C>(p);
  }
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config,
                  Tensor& param_copy) {
  set_device(param);
  const int64_t n = param.numel();
  if (n == 0) return;
  const AdamWStepConstants constants = adamw_step_constants(config);
  const auto launch = [&](auto tag, auto* copy) {
    using C = decltype(tag);
    launch_kernel(adamw_kernel<C>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream,
        n, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), copy, constants);
  };
  if (param_copy.defined() && param_copy.dtype() == DType::BF16) {
    launch(bf16{}, param_copy.data<bf16>());
  } else {
    launch(float{}, param_copy.defined() ? param_copy.data<float>() : static_cast<float*>(nullptr));
  }
  check_launch("adamw_kernel");
}

}  // namespace rwkv::cuda
