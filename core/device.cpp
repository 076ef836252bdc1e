#include "core/device.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace rwkv {

std::string Device::str() const { return is_cpu() ? std::string("cpu") : str_cat("cuda:", index); }

// The CUDA half lives in device_cuda.cpp (CUDA builds) or device_nocuda.cpp.
void* cuda_alloc(int index, size_t bytes);
void cuda_free(int index, void* ptr);
void cuda_copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
void cuda_memset_zero(void* ptr, size_t bytes);

void* device_alloc(Device device, size_t bytes) {
  if (bytes == 0) bytes = 1;  // every tensor owns a real, distinct pointer
  if (device.is_cuda()) return cuda_alloc(device.index, bytes);
  const size_t alignment = 64;
  void* ptr = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  RWKV_CHECK(ptr != nullptr, "out of host memory allocating ", bytes, " bytes\n  ---> HINT: reduce micro_batch or ctx_len");
  return ptr;
}

void device_free(Device device, void* ptr) {
  if (ptr == nullptr) return;
  if (device.is_cuda()) {
    cuda_free(device.index, ptr);
  } else {
    std::free(ptr);
  }
}

void device_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
  } else {
    cuda_copy(dst, dst_device.is_cuda(), src, src_device.is_cuda(), bytes);
  }
}

void device_memset_zero(Device device, void* ptr, size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cuda()) {
    cuda_memset_zero(ptr, bytes);
  } else {
    std::memset(ptr, 0, bytes);
  }
}

bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace rwkv
