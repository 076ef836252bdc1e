#include "kernels/dropout.h"

#include "kernels/dispatch.h"

namespace rwkv {

void dropout_(Tensor& x, const DropoutKey& key) {
  const char* op = "dropout_";
  expect_ndim(op, "x", x, 3, "[B, T, C]");
  detail::expect_float(op, "x", x);
  RWKV_CHECK(key.p >= 0.0f && key.p < 1.0f, op, ": p must be in [0, 1), got ", key.p);
  if (key.p == 0.0f || x.numel() == 0) return;
  RWKV_DISPATCH(op, x, dropout_(x, key));
}

}  // namespace rwkv
