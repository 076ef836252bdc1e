// CUDA emulator, device side: what a .cu file may use inside kernels, for the
// host compiler. The qualifiers vanish (a kernel is a plain function the
// block scheduler calls once per thread), the builtin indices are per-thread
// variables the scheduler sets before it resumes a thread, and the barriers
// and warp shuffles suspend the calling thread until its block or warp has
// arrived (src/block_scheduler.cpp).
//
// __shared__ becomes `static`: the blocks of a grid run one after another on
// one host thread, so a function-local static is exactly one block's shared
// array at a time.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __constant__ static
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};

// Per host thread (fibers share it; the scheduler rewrites them at each switch).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
inline constexpr int warpSize = 32;

namespace cuda_emulator {
// Suspends the calling emulated thread until every live thread of its block
// has called it.
void block_barrier();
// Suspends the calling emulated thread until every live lane of its warp has
// called it; returns the value `bytes` at `mine` of lane `src_lane` (each
// lane offers its own, like a shuffle; src_lane < 0: no exchange).
void warp_exchange(const void* mine, void* out, size_t bytes, int src_lane);
// This thread's lane in its warp (linear thread index mod 32).
int lane_id();
}  // namespace cuda_emulator

inline void __syncthreads() { cuda_emulator::block_barrier(); }
inline void __syncwarp(unsigned int = 0xffffffffu) { cuda_emulator::warp_exchange(nullptr, nullptr, 0, -1); }

// Shuffles: `width` splits the warp into segments of that many lanes, as in CUDA.
template <typename T>
T __shfl_sync(unsigned int, T var, int src_lane, int width = warpSize) {
  static_assert(std::is_trivially_copyable_v<T>);
  const int lane = cuda_emulator::lane_id();
  const int source = (lane / width) * width + (src_lane % width);
  T out;
  cuda_emulator::warp_exchange(&var, &out, sizeof(T), source);
  return out;
}
template <typename T>
T __shfl_xor_sync(unsigned int, T var, int lane_mask, int width = warpSize) {
  const int lane = cuda_emulator::lane_id();
  int source = lane ^ lane_mask;
  if (source / width != lane / width) source = lane;  // outside the segment: own value
  T out;
  cuda_emulator::warp_exchange(&var, &out, sizeof(T), source);
  return out;
}
template <typename T>
T __shfl_down_sync(unsigned int, T var, unsigned int delta, int width = warpSize) {
  const int lane = cuda_emulator::lane_id();
  int source = lane + static_cast<int>(delta);
  if (source / width != lane / width) source = lane;
  T out;
  cuda_emulator::warp_exchange(&var, &out, sizeof(T), source);
  return out;
}
template <typename T>
T __shfl_up_sync(unsigned int, T var, unsigned int delta, int width = warpSize) {
  const int lane = cuda_emulator::lane_id();
  int source = lane - static_cast<int>(delta);
  if (source < 0 || source / width != lane / width) source = lane;
  T out;
  cuda_emulator::warp_exchange(&var, &out, sizeof(T), source);
  return out;
}

// Intrinsics. The fast-math ones (__expf, __logf, __fdividef) are exact here;
// the kernels' own code paths under __CUDA_ARCH__ are not compiled by the
// emulator (it is host code), so the per-element maths is the CPU backend's.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline int __float_as_int(float f) { return static_cast<int>(__float_as_uint(f)); }
inline float __int_as_float(int i) { return __uint_as_float(static_cast<unsigned int>(i)); }
template <typename T>
T __ldg(const T* p) { return *p; }
