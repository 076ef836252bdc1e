#include "kernels/adamw.h"

#include "kernels/dispatch.h"

namespace rwkv {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config,
                  Tensor param_copy) {
  const char* op = "adamw_update";
  detail::expect_param_float(op, "param", param);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"grad", &grad}, {"m", &m}, {"v", &v}}) {
    expect_shape(op, name, *t, param.shape(), "the parameter's shape");
    expect_same_dtype(op, name, *t, param);
    expect_device(op, name, *t, param.device());
  }
  if (param_copy.defined()) {
    expect_shape(op, "param_copy", param_copy, param.shape(), "the parameter's shape");
    DType d = param_copy.dtype();
    RWKV_CHECK(d == DType::F32 || d == DType::BF16, op, ": param_copy has dtype ", dtype_name(d),
               ", expected bf16 or f32");
    expect_device(op, "param_copy", param_copy, param.device());
  }
  RWKV_CHECK(config.step >= 1, op, ": step must be >= 1 (it is 1-based for bias correction), got ", config.step);
  RWKV_CHECK(config.beta1 >= 0.0f && config.beta1 < 1.0f && config.beta2 >= 0.0f && config.beta2 < 1.0f, op,
             ": betas must be in [0, 1), got (", config.beta1, ", ", config.beta2, ")");
  RWKV_CHECK(config.eps > 0.0f, op, ": eps must be positive, got ", config.eps);
  RWKV_DISPATCH(op, param, adamw_update(param, grad, m, v, config, param_copy));
}

}  // namespace rwkv
