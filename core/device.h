// Where a tensor's memory lives, and the few memory primitives each backend
// provides. The CUDA ones are compiled only when the CUDA backend is built;
// otherwise they fail with a clear error.
#pragma once

#include <cstddef>
#include <string>

namespace rwkv {

enum class DeviceType : unsigned char { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return Device{}; }
  static Device cuda(int index = 0) { return Device{DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

// Allocation and copies. CPU memory is 64-byte aligned so vector loops and
// BLAS see aligned rows.
void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr);
void device_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes);
void device_memset_zero(Device device, void* ptr, size_t bytes);

// True when this build has the CUDA backend and at least one GPU is visible.
bool cuda_available();
// Number of visible GPUs (0 without the CUDA backend).
int cuda_device_count();
// Why CUDA is not available, for skip messages and errors.
std::string cuda_unavailable_reason();

}  // namespace rwkv
