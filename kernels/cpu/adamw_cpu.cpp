// AdamW on the CPU: one flat loop over the tensor (maths in kernels/adamw_math.h).
#include "kernels/adamw_math.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"

namespace rwkv::cpu {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config,
                  Tensor& param_copy) {
  const int64_t n = param.numel();
  const AdamWStepConstants c = adamw_step_constants(config);
  visit_float(param.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) adamw_element(p[i], g[i], mp[i], vp[i], c);
  });
  if (param_copy.defined()) cast(param, param_copy);
}

}  // namespace rwkv::cpu
