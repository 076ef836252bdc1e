// Runs a templated CPU kernel body in the tensor's working precision:
// visit_float(dtype, [&](auto zero) { using T = decltype(zero); ... }).
#pragma once

#include "core/dtype.h"
#include "core/error.h"

namespace rwkv::cpu {

// Channels handled together by loops that reduce over rows: each thread owns
// whole channel blocks and walks the rows in order, so sums over rows are
// deterministic for any thread count, and a block is a few cache lines wide.
constexpr int64_t kReduceChannelBlock = 16;

template <typename F>
void visit_float(DType dtype, F&& body) {
  if (dtype == DType::F64) {
    body(double{});
  } else if (dtype == DType::F32) {
    body(float{});
  } else {
    RWKV_FAIL("CPU kernels compute in f32 or f64, got ", dtype_name(dtype));
  }
}

}  // namespace rwkv::cpu
