#include "kernels/gemm.h"

#include "kernels/dispatch.h"

namespace rwkv {

void matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, float alpha,
            float beta) {
  const char* op = "matmul";
  expect_ndim(op, "a", a, 2, "[M, K], or [K, M] when transposed");
  expect_ndim(op, "b", b, 2, "[K, N], or [N, K] when transposed");
  expect_ndim(op, "c", c, 2, "[M, N]");
  detail::expect_float(op, "a", a);
  detail::expect_float(op, "b", b);
  detail::expect_float(op, "c", c);
  expect_device(op, "b", b, a.device());
  expect_device(op, "c", c, a.device());
  int64_t m = transpose_a ? a.dim(1) : a.dim(0);
  int64_t k = transpose_a ? a.dim(0) : a.dim(1);
  int64_t kb = transpose_b ? b.dim(1) : b.dim(0);
  int64_t n = transpose_b ? b.dim(0) : b.dim(1);
  RWKV_CHECK(k == kb, op, ": inner dimensions differ: op(a) is ", shape_str({m, k}), " and op(b) is ",
             shape_str({kb, n}));
  expect_shape(op, "c", c, {m, n}, "[M, N]");
  if (a.is_cpu()) {
    expect_same_dtype(op, "b", b, a);
    expect_same_dtype(op, "c", c, a);
  } else {
    expect_same_dtype(op, "b", b, a);
  }
  RWKV_DISPATCH(op, a, matmul(a, transpose_a, b, transpose_b, c, alpha, beta));
}

void linear_forward(const Tensor& x, const Tensor& weight, Tensor& y) {
  matmul(x, false, weight, true, y, 1.0f, 0.0f);
}

void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor& dx, Tensor& dweight,
                     bool accumulate_dx) {
  if (dx.defined()) matmul(dy, false, weight, false, dx, 1.0f, accumulate_dx ? 1.0f : 0.0f);
  if (dweight.defined()) matmul(dy, true, x, false, dweight, 1.0f, 1.0f);
}

}  // namespace rwkv
