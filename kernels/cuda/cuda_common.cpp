#include "kernels/cuda/cuda_common.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

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
  cudaError_t status = cudaMallocAsync(&ptr_, bytes, kStream);
  if (status == cudaErrorNotSupported) {
    // No stream-ordered allocator on this device/driver (rare: some
    // virtualised setups): plain cudaMalloc; cudaFree then waits for the GPU.
    cudaGetLastError();
    async_ = false;
    status = cudaMalloc(&ptr_, bytes);
  }
  if (status != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    RWKV_FAIL("out of GPU memory allocating ", bytes, " bytes of kernel workspace (", cudaGetErrorString(status),
              ")\n  ---> HINT: reduce micro_batch or ctx_len, or add tensor/pipeline parallelism");
  }
}

DeviceBuffer::~DeviceBuffer() {
  // A destructor cannot throw; a failure here means the context is already
  // broken, and the next checked call reports it.
  if (ptr_ == nullptr) return;
  if (async_) {
    cudaFreeAsync(ptr_, kStream);
  } else {
    cudaFree(ptr_);
  }
}

}  // namespace rwkv::cuda
