// GPU memory of this process: one CachingAllocator (core/caching_allocator.h)
// per GPU over cudaMalloc/cudaFree, created on first use and kept for the life
// of the process. Tensor storage (core/device.cpp) and the kernels' scratch
// buffers (kernels/cuda/cuda_common.h: DeviceBuffer) both allocate here, so a
// training step after the first one makes no cudaMalloc or cudaFree call.
//
// RWKV_CUDA_CACHING_ALLOCATOR=0 in the environment (read once, at the first
// GPU allocation) turns caching off: every allocation is a plain cudaMalloc
// and every free a cudaFree (slow, for debugging; the statistics still count).
//
// Builds without the CUDA backend link stubs: allocations fail with a clear
// error, statistics are zero.
#pragma once

#include <cstddef>

#include "core/caching_allocator.h"

namespace rwkv {

// `bytes` on GPU `device` for use on `stream` (0: the default stream, the only
// one the kernels use today). Throws rwkv::Error when the GPU is out of memory
// even after emptying the cache.
void* cuda_cached_alloc(int device, size_t bytes, StreamId stream = 0);
// Returns memory from cuda_cached_alloc. Never throws (it is called from
// destructors): a bad pointer is logged as an error.
void cuda_cached_free(int device, void* ptr) noexcept;

// Statistics of GPU `device`'s allocator (all zero before its first allocation).
CachingAllocatorStats cuda_memory_stats(int device);
// Gives every fully cached segment of GPU `device` back to the driver (cudaFree);
// returns the bytes released.
size_t cuda_empty_cache(int device);
void cuda_reset_peak_memory_stats(int device);
// False when RWKV_CUDA_CACHING_ALLOCATOR disables caching.
bool cuda_caching_allocator_enabled();

}  // namespace rwkv
