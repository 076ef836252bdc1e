#include "kernels/cuda/cuda_common.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/cuda_allocator.h"

namespace rwkv::cuda {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    RWKV_FAIL("CUDA error in ", what, ": ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
  }
}

namespace {
bool sync_after_launch() {
  static const bool sync = [] {
    const char* value = std::getenv("RWKV_CUDA_SYNC");
    return value != nullptr && std::strcmp(value, "0") != 0 && value[0] != '\0';
  }();
  return sync;
}
}  // namespace

void check_launch(const char* kernel) {
  // cudaGetLastError also clears a non-sticky launch error, so the next op does
  // not report this one again.
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    RWKV_FAIL("CUDA error launching kernel ", kernel, ": ", cudaGetErrorString(status), " (",
              cudaGetErrorName(status), ")");
  }
  if (sync_after_launch()) {
    status = cudaDeviceSynchronize();
    if (status != cudaSuccess) {
      RWKV_FAIL("CUDA error in kernel ", kernel, " (RWKV_CUDA_SYNC): ", cudaGetErrorString(status), " (",
                cudaGetErrorName(status), ")");
    }
  }
}

void set_device(const Tensor& t) {
  RWKV_CHECK(t.is_cuda(), "internal: CUDA kernel called with ", t.str());
  check_cuda(cudaSetDevice(t.device().index), "cudaSetDevice");
}

int sm_count() {
  static std::mutex mutex;
  static std::vector<int> counts;  // by device index; 0 = not queried yet
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mutex);
  if (counts.size() <= static_cast<size_t>(device)) counts.resize(static_cast<size_t>(device) + 1, 0);
  int& count = counts[static_cast<size_t>(device)];
  if (count == 0) {
    check_cuda(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(MultiProcessorCount)");
  }
  return count;
}

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaGetDevice(&device_), "cudaGetDevice");
  ptr_ = cuda_cached_alloc(device_, bytes, reinterpret_cast<StreamId>(kStream));
}

DeviceBuffer::~DeviceBuffer() {
  // Never throws: a bad free is logged by the allocator.
  cuda_cached_free(device_, ptr_);
}

}  // namespace rwkv::cuda
