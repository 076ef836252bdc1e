// Device-side helpers shared by the .cu files: grid-stride index ranges and
// fixed-order (hence deterministic) warp and block reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "core/bf16.h"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/launch_geometry.h"

namespace rwkv::cuda {

// Every kernel launch of the backend: kernel<<<grid, block, shared_bytes,
// stream>>>(args...) on a GPU. Under the CUDA emulator (-DRWKV_CUDA=EMULATE,
// cuda_emulator/) the same call runs the grid on the CPU after checking that
// every pointer argument is device memory of the current GPU, which is why
// launches go through this one function instead of the <<<>>> syntax.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   Args&&... args) {
#if defined(RWKV_CUDA_EMULATOR)
  cuda_emulator::launch(kernel, grid, block, shared_bytes, stream, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
}

// First index and stride of a 1-D grid-stride loop, in 64 bits (tensors may
// exceed 2^31 elements).
__device__ __forceinline__ int64_t grid_start() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Butterfly sum over the 32 lanes: every lane ends with the same value, and
// the order of additions is fixed by the lane pattern, so it is deterministic.
template <typename T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Sum over a block of up to 1024 threads (blockDim.x a multiple of 32); the
// result is returned to every thread. `scratch` holds 32 values of T in
// shared memory. Fixed order: warp butterflies, then warp 0 over the warp sums.
template <typename T>
__device__ T block_sum(T x, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  x = warp_sum(x);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    // Every lane of warp 0 reads its slot before the shuffles (which converge
    // the warp), so lane 0's write of the total cannot overtake a read.
    x = lane < warps ? scratch[lane] : T(0);
    x = warp_sum(x);
    if (lane == 0) scratch[0] = x;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace rwkv::cuda
