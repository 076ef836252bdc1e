// Host-side plumbing shared by the CUDA kernels: error checks that turn CUDA
// failures into rwkv::Error, the current-device guard, stream-ordered scratch
// buffers, and the f32/bf16 dispatch. Plain C++ over the CUDA runtime API, so
// both the .cu files and the host-only .cpp files (gemm) include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "core/bf16.h"
#include "core/tensor.h"

namespace rwkv::cuda {

// Every kernel and cuBLAS call is issued on the default stream for now.
inline constexpr cudaStream_t kStream = nullptr;

// Throws rwkv::Error "CUDA error in <what>: <cudaGetErrorString>" unless status is cudaSuccess.
void check_cuda(cudaError_t status, const char* what);

// After a kernel launch: reports a bad launch configuration (or an earlier
// asynchronous fault) as an rwkv::Error naming the kernel. With the environment
// variable RWKV_CUDA_SYNC=1 it also synchronises, so a fault inside the kernel
// is reported here instead of at some later call (debugging aid; slow).
void check_launch(const char* kernel);

// Makes the tensor's GPU the current device of this thread (cheap when it
// already is). Each op calls it first: a rank drives one GPU, but tensors on
// another device must still run there.
void set_device(const Tensor& t);

// Number of SMs of the current device (cached per device).
int sm_count();

// Stream-ordered fp32/f64 scratch memory: cudaMallocAsync on the default
// stream, cudaFreeAsync when it goes out of scope. Kernels enqueued before the
// free still see valid memory (the free is ordered after them), and the pool
// makes repeated same-sized requests cheap (memory returns to the driver at
// synchronisation points: the pool's default release threshold of 0).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), async_(other.async_) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;

  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  bool async_ = true;  // false: cudaMalloc fallback where the stream-ordered allocator is missing
};

// Calls f(float{}) or f(bf16{}) after the storage type of a float tensor, so a
// generic lambda can launch kernel<decltype(tag)>. Anything else is an error
// (the dispatchers already reject it; this guards direct calls).
template <typename F>
void dispatch_float(const Tensor& t, const char* op, F&& f) {
  switch (t.dtype()) {
    case DType::F32: std::forward<F>(f)(float{}); return;
    case DType::BF16: std::forward<F>(f)(bf16{}); return;
    default: RWKV_FAIL(op, ": CUDA kernels take f32 or bf16 tensors, got ", t.str());
  }
}

// Launch sizes are int64 in the geometry helpers, unsigned int in dim3.
inline unsigned int grid_u32(int64_t blocks) { return static_cast<unsigned int>(blocks); }

}  // namespace rwkv::cuda
