// CUDA memory functions for builds without the CUDA backend: every call is a
// clear error, never a crash.
#include <string>

#include "core/cuda_allocator.h"
#include "core/device.h"
#include "core/error.h"

namespace rwkv {

namespace {
[[noreturn]] void no_cuda() {
  RWKV_FAIL("CUDA memory requested, but this build has no CUDA backend\n"
            "  ---> HINT: rebuild with -DRWKV_CUDA=ON on a machine with the CUDA toolkit, or use device: cpu");
}
}  // namespace

void* cuda_alloc(int, size_t) { no_cuda(); }
void cuda_free(int, void*) {}
void cuda_copy(void*, bool, const void*, bool, size_t) { no_cuda(); }
void cuda_memset_zero(void*, size_t) { no_cuda(); }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "this build has no CUDA backend (RWKV_CUDA=OFF or nvcc not found)"; }

void* cuda_cached_alloc(int, size_t, StreamId) { no_cuda(); }
void cuda_cached_free(int, void*) noexcept {}
CachingAllocatorStats cuda_memory_stats(int) { return {}; }
size_t cuda_empty_cache(int) { return 0; }
void cuda_reset_peak_memory_stats(int) {}
bool cuda_caching_allocator_enabled() { return false; }

}  // namespace rwkv
