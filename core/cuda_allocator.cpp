// The CUDA backing of the caching allocator and the per-GPU instances
// (compiled only in CUDA builds; plain C++ over the CUDA runtime API).
#include "core/cuda_allocator.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace rwkv {

namespace {

// Makes `device` current for the life of the guard and restores the caller's
// device afterwards, so allocating never changes which GPU a thread works on.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) {
      cudaGetLastError();
      previous_ = -1;
    }
    if (previous_ != device) {
      const cudaError_t status = cudaSetDevice(device);
      RWKV_CHECK(status == cudaSuccess, "CUDA error in cudaSetDevice(", device, "): ", cudaGetErrorString(status));
      changed_ = true;
    }
  }
  ~DeviceGuard() {
    if (changed_ && previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool changed_ = false;
};

// cudaMalloc/cudaFree on one GPU. cudaMalloc returns 256-B aligned memory and
// the allocator splits segments only at multiples of 512 B.
class CudaBacking final : public BackingAllocator {
 public:
  explicit CudaBacking(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    DeviceGuard guard(device_);
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky; clear it so the next check_launch does not report it
      return nullptr;
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      RWKV_FAIL("CUDA error in cudaMalloc(", bytes, " bytes) on cuda:", device_, ": ", cudaGetErrorString(status));
    }
    return ptr;
  }

  void release(void* ptr, size_t) override {
    // cudaFree waits for the device, so no kernel still uses the memory. A
    // failure means the context is already broken; the next checked call
    // reports it.
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) previous = -1;
    if (previous != device_) cudaSetDevice(device_);
    if (cudaFree(ptr) != cudaSuccess) cudaGetLastError();
    if (previous >= 0 && previous != device_) cudaSetDevice(previous);
  }

 private:
  int device_;
};

bool caching_enabled_from_env() {
  static const bool enabled = [] {
    const bool on = caching_allocator_enabled_by(std::getenv("RWKV_CUDA_CACHING_ALLOCATOR"));
    if (!on) log_info("RWKV_CUDA_CACHING_ALLOCATOR: caching off, every GPU allocation is a cudaMalloc (debugging)");
    return on;
  }();
  return enabled;
}

// One allocator per GPU, created on first use. Deliberately never destroyed:
// tensors in static objects may be freed after a destructor of this table would
// have run, and cudaFree from a static destructor can run after the driver has
// shut down; the driver reclaims everything at exit.
std::mutex table_mutex;
std::vector<CachingAllocator*>* table = nullptr;

CachingAllocator* find_allocator(int device, bool create) {
  RWKV_CHECK(device >= 0, "cuda:", device, " is not a GPU index");
  std::lock_guard<std::mutex> lock(table_mutex);
  if (table == nullptr) table = new std::vector<CachingAllocator*>();
  if (table->size() <= static_cast<size_t>(device)) {
    if (!create) return nullptr;
    table->resize(static_cast<size_t>(device) + 1, nullptr);
  }
  CachingAllocator*& slot = (*table)[static_cast<size_t>(device)];
  if (slot == nullptr && create) {
    CachingAllocatorOptions options;
    options.caching = caching_enabled_from_env();
    options.name = str_cat("cuda:", device);
    slot = new CachingAllocator(std::make_unique<CudaBacking>(device), options);
  }
  return slot;
}

}  // namespace

void* cuda_cached_alloc(int device, size_t bytes, StreamId stream) {
  return find_allocator(device, true)->allocate(bytes, stream);
}

void cuda_cached_free(int device, void* ptr) noexcept {
  if (ptr == nullptr) return;
  try {
    CachingAllocator* allocator = find_allocator(device, false);
    RWKV_CHECK(allocator != nullptr, "free of GPU memory ", ptr, " on cuda:", device, ", which has no allocations");
    allocator->free(ptr);
  } catch (const std::exception& e) {
    log_error("internal: ", e.what());
  }
}

CachingAllocatorStats cuda_memory_stats(int device) {
  CachingAllocator* allocator = find_allocator(device, false);
  return allocator != nullptr ? allocator->stats() : CachingAllocatorStats{};
}

size_t cuda_empty_cache(int device) {
  CachingAllocator* allocator = find_allocator(device, false);
  return allocator != nullptr ? allocator->empty_cache() : 0;
}

void cuda_reset_peak_memory_stats(int device) {
  CachingAllocator* allocator = find_allocator(device, false);
  if (allocator != nullptr) allocator->reset_peak_stats();
}

bool cuda_caching_allocator_enabled() { return caching_enabled_from_env(); }

}  // namespace rwkv
