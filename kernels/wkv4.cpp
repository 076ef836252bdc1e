#include "kernels/wkv4.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_wkv_inputs(const char* op, const Tensor& time_decay, const Tensor& time_first, const Tensor& k,
                      const Tensor& v) {
  expect_ndim(op, "k", k, 3, "[B, T, C]");
  detail::expect_float(op, "k", k);
  const int64_t B = k.dim(0), T = k.dim(1), C = k.dim(2);
  expect_shape(op, "v", v, {B, T, C}, "[B, T, C]");
  expect_same_dtype(op, "v", v, k);
  expect_device(op, "v", v, k.device());
  expect_shape(op, "time_decay", time_decay, {C}, "[C]");
  expect_shape(op, "time_first", time_first, {C}, "[C]");
  detail::expect_param_float(op, "time_decay", time_decay);
  expect_same_dtype(op, "time_first", time_first, time_decay);
  expect_device(op, "time_decay", time_decay, k.device());
  expect_device(op, "time_first", time_first, k.device());
  if (k.is_cpu()) expect_same_dtype(op, "k", k, time_decay);
}
}  // namespace

void wkv4_forward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v, Tensor& y,
                  Tensor state) {
  const char* op = "wkv4_forward";
  check_wkv_inputs(op, time_decay, time_first, k, v);
  expect_shape(op, "y", y, k.shape(), "[B, T, C]");
  expect_same_dtype(op, "y", y, k);
  expect_device(op, "y", y, k.device());
  if (state.defined()) {
    expect_shape(op, "state", state, {3, k.dim(0), k.dim(2)}, "[3 = (aa, bb, pp), B, C]");
    expect_same_dtype(op, "state", state, time_decay);
    expect_device(op, "state", state, k.device());
  }
  RWKV_DISPATCH(op, k, wkv4_forward(time_decay, time_first, k, v, y, state));
}

void wkv4_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
                   const Tensor& gy, Tensor& g_time_decay, Tensor& g_time_first, Tensor& gk, Tensor& gv) {
  const char* op = "wkv4_backward";
  check_wkv_inputs(op, time_decay, time_first, k, v);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"gy", &gy}, {"gk", &gk}, {"gv", &gv}}) {
    expect_shape(op, name, *t, k.shape(), "[B, T, C]");
    expect_same_dtype(op, name, *t, k);
    expect_device(op, name, *t, k.device());
  }
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"g_time_decay", &g_time_decay},
                         {"g_time_first", &g_time_first}}) {
    expect_shape(op, name, *t, time_decay.shape(), "[C]");
    expect_same_dtype(op, name, *t, time_decay);
    expect_device(op, name, *t, k.device());
  }
  RWKV_DISPATCH(op, k, wkv4_backward(time_decay, time_first, k, v, gy, g_time_decay, g_time_first, gk, gv));
}

}  // namespace rwkv
