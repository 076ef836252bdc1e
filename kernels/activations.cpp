#include "kernels/activations.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void expect_like(const char* op, const char* name, const Tensor& t, const Tensor& reference) {
  expect_shape(op, name, t, reference.shape(), "the shape of the first argument");
  expect_same_dtype(op, name, t, reference);
  expect_device(op, name, t, reference.device());
}
}  // namespace

void sigmoid_gate_forward(const Tensor& r, const Tensor& y, Tensor& out) {
  const char* op = "sigmoid_gate_forward";
  detail::expect_float(op, "r", r);
  expect_like(op, "y", y, r);
  expect_like(op, "out", out, r);
  RWKV_DISPATCH(op, r, sigmoid_gate_forward(r, y, out));
}

void sigmoid_gate_backward(const Tensor& r, const Tensor& y, const Tensor& dout, Tensor& dr, Tensor& dy) {
  const char* op = "sigmoid_gate_backward";
  detail::expect_float(op, "r", r);
  expect_like(op, "y", y, r);
  expect_like(op, "dout", dout, r);
  expect_like(op, "dr", dr, r);
  expect_like(op, "dy", dy, r);
  RWKV_DISPATCH(op, r, sigmoid_gate_backward(r, y, dout, dr, dy));
}

void squared_relu_forward(const Tensor& x, Tensor& out) {
  const char* op = "squared_relu_forward";
  detail::expect_float(op, "x", x);
  expect_like(op, "out", out, x);
  RWKV_DISPATCH(op, x, squared_relu_forward(x, out));
}

void squared_relu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  const char* op = "squared_relu_backward";
  detail::expect_float(op, "x", x);
  expect_like(op, "dout", dout, x);
  expect_like(op, "dx", dx, x);
  RWKV_DISPATCH(op, x, squared_relu_backward(x, dout, dx));
}

}  // namespace rwkv
