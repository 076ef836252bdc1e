// CUDA memory functions, compiled only in CUDA builds (plain C++ against the
// CUDA runtime API).
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_allocator.h"
#include "core/device.h"
#include "core/error.h"

namespace rwkv {

namespace {
void check_cuda(cudaError_t status, const char* what) {
  RWKV_CHECK(status == cudaSuccess, "CUDA error in ", what, ": ", cudaGetErrorString(status));
}
}  // namespace

// Tensor storage goes through the caching allocator of its GPU
// (core/cuda_allocator.h), on the default stream, the one every kernel uses.
void* cuda_alloc(int index, size_t bytes) { return cuda_cached_alloc(index, bytes, 0); }

void cuda_free(int index, void* ptr) { cuda_cached_free(index, ptr); }

namespace {
// Makes the GPU that owns `device_ptr` current for a copy or memset (they run
// on the current device's default stream, ordered with its kernels) and
// restores the previous one: a thread that never chose a GPU, or chose
// another, must not issue them against GPU 0.
class OwnerDeviceGuard {
 public:
  explicit OwnerDeviceGuard(const void* device_ptr) {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, device_ptr) != cudaSuccess || attributes.device < 0) {
      cudaGetLastError();  // not a device pointer we know: leave the current device alone
      return;
    }
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (attributes.device != previous_) {
      check_cuda(cudaSetDevice(attributes.device), "cudaSetDevice");
      switched_ = true;
    }
  }
  ~OwnerDeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  OwnerDeviceGuard(const OwnerDeviceGuard&) = delete;
  OwnerDeviceGuard& operator=(const OwnerDeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};
}  // namespace

void cuda_copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : cudaMemcpyDeviceToHost;
  const OwnerDeviceGuard guard(dst_on_device ? dst : src);
  check_cuda(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
}

void cuda_memset_zero(void* ptr, size_t bytes) {
  const OwnerDeviceGuard guard(ptr);
  check_cuda(cudaMemset(ptr, 0, bytes), "cudaMemset");
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not confused
    return 0;
  }
  return count;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return str_cat("no usable GPU: ", cudaGetErrorString(status));
  }
  if (count == 0) return "no GPU is visible (CUDA_VISIBLE_DEVICES?)";
  return "";
}

}  // namespace rwkv
