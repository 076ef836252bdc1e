// Host-side plumbing shared by the CUDA kernels: error checks that turn CUDA
// failures into rwkv::Error, the current-device guard, scratch buffers from the
// caching allocator, and the f32/bf16 dispatch. Plain C++ over the CUDA runtime API, so
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

// Scratch memory of an op (partials, workspaces) from the caching allocator
// of the current GPU (core/cuda_allocator.h) on kStream, returned to the cache
// when it goes out of scope. Kernels enqueued before the free still see valid
// memory: the block is only handed out again to later work on the same
// stream, which runs after them. So no op synchronises to free its scratch,
// and after the first training step no scratch request reaches the driver.
//
// Why not cudaMallocAsync (the stream-ordered pool used before): with its
// default release threshold of 0 the pool gives its memory back to the driver
// at every synchronisation (each step's sum_of_squares is one), so every step
// maps it again; its memory is also invisible to the tensor allocator's cache,
// so the two could not lend each other memory, the out-of-memory retry could
// not release it, and the statistics would miss it. One allocator is simpler.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), device_(other.device_) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;

  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  int device_ = 0;  // the GPU that was current at allocation
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
