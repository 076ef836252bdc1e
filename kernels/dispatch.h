// Routes an op to the backend that owns its tensors, after the op has checked
// its arguments. Internal to kernels/*.cpp.
#pragma once

#include "core/profiler.h"
#include "core/tensor.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_ops.h"

namespace rwkv::detail {

[[noreturn]] void fail_no_cuda(const char* op);

// Float tensors: f32 or f64 on the CPU, f32 or bf16 on CUDA.
void expect_float(const char* op, const char* name, const Tensor& t);
// The dtype parameters and optimizer state use: f32, or f64 on the CPU.
void expect_param_float(const char* op, const char* name, const Tensor& t);

}  // namespace rwkv::detail

// Each dispatch is timed under the op's name when profiling is on.
#if defined(RWKV_HAVE_CUDA)
#define RWKV_DISPATCH(op, on, call)                                  \
  do {                                                               \
    ::rwkv::ProfileScope rwkv_profile_scope(op);                     \
    if ((on).is_cuda()) {                                            \
      ::rwkv::cuda::call;                                            \
    } else {                                                         \
      ::rwkv::cpu::call;                                             \
    }                                                                \
  } while (0)
#else
#define RWKV_DISPATCH(op, on, call)                                  \
  do {                                                               \
    ::rwkv::ProfileScope rwkv_profile_scope(op);                     \
    if ((on).is_cuda()) ::rwkv::detail::fail_no_cuda(op);           \
    ::rwkv::cpu::call;                                               \
  } while (0)
#endif
