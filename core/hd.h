// Marks functions that both backends compile: the CPU build sees plain inline
// functions, nvcc sees __host__ __device__ ones. Per-element maths lives in
// headers that use this, so the CPU tests cover what the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define RWKV_HD __host__ __device__ __forceinline__
#else
#define RWKV_HD inline
#endif
