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

void cuda_copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : cudaMemcpyDeviceToHost;
  check_cuda(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
}

void cuda_memset_zero(void* ptr, size_t bytes) { check_cuda(cudaMemset(ptr, 0, bytes), "cudaMemset"); }

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
