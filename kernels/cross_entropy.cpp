#include "kernels/cross_entropy.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_cross_entropy(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& losses) {
  expect_ndim(op, "logits", logits, 2, "[N, V]");
  detail::expect_float(op, "logits", logits);
  const int64_t N = logits.dim(0);
  expect_shape(op, "targets", targets, {N}, "[N]");
  expect_dtype(op, "targets", targets, DType::I32);
  expect_device(op, "targets", targets, logits.device());
  expect_shape(op, "losses", losses, {N}, "[N]");
  expect_dtype(op, "losses", losses, logits.dtype() == DType::F64 ? DType::F64 : DType::F32);
  expect_device(op, "losses", losses, logits.device());
}
}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses) {
  const char* op = "cross_entropy_forward";
  check_cross_entropy(op, logits, targets, losses);
  Tensor no_grad;
  RWKV_DISPATCH(op, logits, cross_entropy(logits, targets, losses, no_grad, 0.0f, 0.0f));
}

void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& dlogits,
                                    float grad_scale, float l2wrap_factor) {
  const char* op = "cross_entropy_forward_backward";
  check_cross_entropy(op, logits, targets, losses);
  expect_shape(op, "dlogits", dlogits, logits.shape(), "[N, V]");
  expect_same_dtype(op, "dlogits", dlogits, logits);
  expect_device(op, "dlogits", dlogits, logits.device());
  RWKV_DISPATCH(op, logits, cross_entropy(logits, targets, losses, dlogits, grad_scale, l2wrap_factor));
}

}  // namespace rwkv
