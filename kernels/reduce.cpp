#include "kernels/reduce.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace rwkv {

double sum_of_squares(const Tensor& x) {
  const char* op = "sum_of_squares";
  detail::expect_float(op, "x", x);
  if (x.is_cuda()) {
#if defined(RWKV_HAVE_CUDA)
    return cuda::sum_of_squares(x);
#else
    detail::fail_no_cuda(op);
#endif
  }
  return cpu::sum_of_squares(x);
}

std::vector<double> sums_of_squares(const std::vector<Tensor>& xs) {
  const char* op = "sums_of_squares";
  if (xs.empty()) return {};
  for (size_t i = 0; i < xs.size(); ++i) {
    detail::expect_float(op, "xs[i]", xs[i]);
    RWKV_CHECK(xs[i].device() == xs[0].device(), op, ": xs[", i, "] is on ", xs[i].device().str(), " but xs[0] on ",
               xs[0].device().str(), "; every tensor of one call must be on one device");
  }
  if (xs[0].is_cuda()) {
#if defined(RWKV_HAVE_CUDA)
    return cuda::sums_of_squares(xs);
#else
    detail::fail_no_cuda(op);
#endif
  }
  return cpu::sums_of_squares(xs);
}

double global_norm(const std::vector<Tensor>& tensors) {
  double total = 0.0;
  for (double s : sums_of_squares(tensors)) total += s;  // fixed order: the list's
  return std::sqrt(total);
}

float clip_factor(double norm, float max_norm) {
  if (max_norm <= 0.0f) return 1.0f;
  double factor = static_cast<double>(max_norm) / (norm + 1e-6);
  return factor < 1.0 ? static_cast<float>(factor) : 1.0f;
}

void add_mean_(Tensor& acc, const Tensor& values) {
  const char* op = "add_mean_";
  expect_shape(op, "acc", acc, {1}, "[1]");
  expect_dtype(op, "acc", acc, DType::F64);
  expect_ndim(op, "values", values, 1, "[N]");
  detail::expect_param_float(op, "values", values);
  expect_device(op, "values", values, acc.device());
  RWKV_CHECK(values.numel() > 0, op, ": values is empty; the mean of nothing is undefined");
  RWKV_DISPATCH(op, acc, add_mean_(acc, values));
}

void scale_(Tensor& x, float factor) {
  const char* op = "scale_";
  detail::expect_float(op, "x", x);
  RWKV_DISPATCH(op, x, scale_(x, factor));
}

double clip_global_norm_(std::vector<Tensor>& grads, float max_norm) {
  double norm = global_norm(grads);
  float factor = clip_factor(norm, max_norm);
  if (factor < 1.0f) {
    for (Tensor& g : grads) scale_(g, factor);
  }
  return norm;
}

void add_(Tensor& a, const Tensor& b) {
  const char* op = "add_";
  detail::expect_float(op, "a", a);
  expect_shape(op, "b", b, a.shape(), "the shape of a");
  expect_same_dtype(op, "b", b, a);
  expect_device(op, "b", b, a.device());
  RWKV_DISPATCH(op, a, add_(a, b));
}

void cast(const Tensor& src, Tensor& dst) {
  const char* op = "cast";
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"src", &src}, {"dst", &dst}}) {
    expect_defined(op, name, *t);
    DType d = t->dtype();
    RWKV_CHECK(d == DType::F32 || d == DType::BF16 || (t->is_cpu() && d == DType::F64), op, ": ", name,
               " has dtype ", dtype_name(d), ", expected f32 or bf16", t->is_cpu() ? " or f64" : "");
  }
  expect_shape(op, "dst", dst, src.shape(), "the shape of src");
  expect_device(op, "dst", dst, src.device());
  RWKV_DISPATCH(op, src, cast(src, dst));
}

}  // namespace rwkv
