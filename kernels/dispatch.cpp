#include "kernels/dispatch.h"

namespace rwkv::detail {

void fail_no_cuda(const char* op) {
  RWKV_FAIL(op, ": tensors are on a CUDA device but this build has no CUDA backend\n"
            "  ---> HINT: rebuild with -DRWKV_CUDA=ON, or keep the tensors on the CPU");
}

void expect_float(const char* op, const char* name, const Tensor& t) {
  expect_defined(op, name, t);
  if (t.is_cpu()) {
    RWKV_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": ", name, " has dtype ",
               dtype_name(t.dtype()), ", expected f32 or f64 on the CPU (bf16 storage is a CUDA feature)");
  } else {
    RWKV_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, op, ": ", name, " has dtype ",
               dtype_name(t.dtype()), ", expected f32 or bf16 on CUDA");
  }
}

void expect_param_float(const char* op, const char* name, const Tensor& t) {
  expect_defined(op, name, t);
  bool ok = t.dtype() == DType::F32 || (t.is_cpu() && t.dtype() == DType::F64);
  RWKV_CHECK(ok, op, ": ", name, " has dtype ", dtype_name(t.dtype()), ", expected f32",
             t.is_cpu() ? " or f64" : "", " (parameters, statistics and optimizer state stay in full precision)");
}

}  // namespace rwkv::detail
