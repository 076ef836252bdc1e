#include "kernels/embedding.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_tokens(const char* op, const Tensor& tokens, const Tensor& weight_like) {
  expect_ndim(op, "tokens", tokens, 1, "[N]");
  expect_dtype(op, "tokens", tokens, DType::I32);
  expect_device(op, "tokens", tokens, weight_like.device());
}
}  // namespace

void embedding_forward(const Tensor& tokens, const Tensor& weight, Tensor& out) {
  const char* op = "embedding_forward";
  expect_ndim(op, "weight", weight, 2, "[V, C]");
  detail::expect_float(op, "weight", weight);
  check_tokens(op, tokens, weight);
  expect_shape(op, "out", out, {tokens.dim(0), weight.dim(1)}, "[N, C]");
  expect_same_dtype(op, "out", out, weight);
  expect_device(op, "out", out, weight.device());
  RWKV_DISPATCH(op, weight, embedding_forward(tokens, weight, out));
}

void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dweight) {
  const char* op = "embedding_backward";
  expect_ndim(op, "dweight", dweight, 2, "[V, C]");
  detail::expect_param_float(op, "dweight", dweight);
  check_tokens(op, tokens, dweight);
  expect_shape(op, "dout", dout, {tokens.dim(0), dweight.dim(1)}, "[N, C]");
  detail::expect_float(op, "dout", dout);
  expect_device(op, "dout", dout, dweight.device());
  if (dweight.is_cpu()) expect_same_dtype(op, "dout", dout, dweight);
  RWKV_DISPATCH(op, dweight, embedding_backward(tokens, dout, dweight));
}

}  // namespace rwkv
