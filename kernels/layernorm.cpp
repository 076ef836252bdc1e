#include "kernels/layernorm.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_layernorm_common(const char* op, const Tensor& x, const Tensor& weight, const Tensor& mean,
                            const Tensor& rstd) {
  expect_ndim(op, "x", x, 2, "[N, C]");
  detail::expect_float(op, "x", x);
  const int64_t N = x.dim(0), C = x.dim(1);
  expect_shape(op, "weight", weight, {C}, "[C]");
  detail::expect_param_float(op, "weight", weight);
  expect_device(op, "weight", weight, x.device());
  expect_shape(op, "mean", mean, {N}, "[N]");
  expect_shape(op, "rstd", rstd, {N}, "[N]");
  expect_same_dtype(op, "mean", mean, weight);
  expect_same_dtype(op, "rstd", rstd, weight);
  expect_device(op, "mean", mean, x.device());
  expect_device(op, "rstd", rstd, x.device());
  if (x.is_cpu()) expect_same_dtype(op, "x", x, weight);
}
}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y, Tensor& mean,
                       Tensor& rstd, float eps) {
  const char* op = "layernorm_forward";
  check_layernorm_common(op, x, weight, mean, rstd);
  expect_shape(op, "bias", bias, weight.shape(), "[C]");
  expect_same_dtype(op, "bias", bias, weight);
  expect_device(op, "bias", bias, x.device());
  expect_shape(op, "y", y, x.shape(), "[N, C]");
  expect_same_dtype(op, "y", y, x);
  expect_device(op, "y", y, x.device());
  RWKV_CHECK(eps > 0.0f, op, ": eps must be positive, got ", eps);
  RWKV_DISPATCH(op, x, layernorm_forward(x, weight, bias, y, mean, rstd, eps));
}

void layernorm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const char* op = "layernorm_backward";
  check_layernorm_common(op, x, weight, mean, rstd);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dy", &dy}, {"dx", &dx}}) {
    expect_shape(op, name, *t, x.shape(), "[N, C]");
    expect_same_dtype(op, name, *t, x);
    expect_device(op, name, *t, x.device());
  }
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dweight", &dweight}, {"dbias", &dbias}}) {
    expect_shape(op, name, *t, weight.shape(), "[C]");
    expect_same_dtype(op, name, *t, weight);
    expect_device(op, name, *t, x.device());
  }
  RWKV_DISPATCH(op, x, layernorm_backward(x, weight, mean, rstd, dy, dx, dweight, dbias));
}

}  // namespace rwkv
