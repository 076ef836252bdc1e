// Softmax cross-entropy with L2Wrap on CUDA (maths in kernels/cross_entropy.h).
// logits/dlogits f32 or bf16, targets i32, losses f32; fp32 maths.
#include <cmath>

#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/fast_exp.h"

namespace rwkv::cuda {

namespace {

constexpr int kThreads = kCrossEntropyThreads;

// Running softmax statistics of a set of logits: max m (first index of it in
// idx) and s = sum exp(x - m).
struct SoftmaxStats {
  float m;
  float s;
  int64_t idx;
};

// Merges two disjoint sets. Commutative (max, the smaller index on ties, and a
// sum of two terms), so both lanes of a butterfly exchange compute the same
// bits. A set with s == 0 is empty (m = -inf) and contributes nothing.
__device__ __forceinline__ SoftmaxStats merge(const SoftmaxStats& a, const SoftmaxStats& b) {
  SoftmaxStats r;
  r.m = fmaxf(a.m, b.m);
  r.s = (a.s > 0.0f ? a.s * exact_exp(a.m - r.m) : 0.0f) + (b.s > 0.0f ? b.s * exact_exp(b.m - r.m) : 0.0f);
  const bool take_b = b.m > a.m || (b.m == a.m && b.idx < a.idx);
  r.idx = take_b ? b.idx : a.idx;
  return r;
}

__device__ __forceinline__ SoftmaxStats warp_merge(SoftmaxStats x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    SoftmaxStats other;
    other.m = __shfl_xor_sync(0xffffffffu, x.m, offset);
    other.s = __shfl_xor_sync(0xffffffffu, x.s, offset);
    other.idx = __shfl_xor_sync(0xffffffffu, x.idx, offset);
    x = merge(x, other);
  }
  return x;
}

// One block per row (grid-stride over rows):
//   pass 1: online max / sum-exp / first argmax over the row (one read);
//           block merge in a fixed tree (deterministic);
//   loss_n = m + log(s) - x[target]           (NaN when target is outside [0, V))
//   pass 2 (dlogits given): d_i = grad_scale * (exp(x_i - m) / s - [i == target])
//                                + l2wrap_factor * m  at i == argmax (first maximum)
// dlogits may be logits: x[target] is read before the first barrier, and in
// pass 2 every element is read then written by the same thread.
template <typename T>
__global__ void cross_entropy_kernel(int64_t N, int64_t V,
                                     const T* logits,                     // [N, V]
                                     const int32_t* __restrict__ targets, // [N]
                                     float* __restrict__ losses,          // [N]
                                     T* dlogits,                          // [N, V] or null
                                     float grad_scale, float l2wrap_factor) {
  __shared__ SoftmaxStats warp_stats[kThreads / 32];
  __shared__ SoftmaxStats row_stats;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* row = logits + n * V;
    const int64_t target = targets[n];
    const bool target_ok = target >= 0 && target < V;
    float target_logit = 0.0f;
    if (threadIdx.x == 0 && target_ok) target_logit = load_as_float(row[target]);

    SoftmaxStats st{-INFINITY, 0.0f, V};
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      const float x = load_as_float(row[i]);
      if (x > st.m) {
        st.s = st.s * exact_exp(st.m - x) + 1.0f;
        st.m = x;
        st.idx = i;
      } else {
        st.s += exact_exp(x - st.m);
      }
    }
    st = warp_merge(st);
    if (lane == 0) warp_stats[warp] = st;
    __syncthreads();
    if (warp == 0) {
      st = lane < kThreads / 32 ? warp_stats[lane] : SoftmaxStats{-INFINITY, 0.0f, V};
      st = warp_merge(st);
      if (lane == 0) row_stats = st;
    }
    __syncthreads();
    st = row_stats;
    if (threadIdx.x == 0) losses[n] = target_ok ? st.m + log_t(st.s) - target_logit : NAN;

    if (dlogits != nullptr) {
      T* drow = dlogits + n * V;
      const float inv_s = 1.0f / st.s;
      for (int64_t i = threadIdx.x; i < V; i += kThreads) {
        float d = grad_scale * (exact_exp(load_as_float(row[i]) - st.m) * inv_s - (i == target ? 1.0f : 0.0f));
        if (i == st.idx) d += l2wrap_factor * st.m;
        drow[i] = store_from_float<T>(d);
      }
    }
    __syncthreads();  // row_stats and warp_stats are reused by the next row
  }
}

}  // namespace

void cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& dlogits, float grad_scale,
                   float l2wrap_factor) {
  set_device(logits);
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (N == 0) return;
  dispatch_float(logits, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    T* d = dlogits.defined() ? dlogits.data<T>() : nullptr;
    launch_kernel(cross_entropy_kernel<T>, grid_u32(row_blocks(N, 1)), kThreads, 0, kStream,
        N, V, logits.data<T>(), targets.data<int32_t>(), losses.data<float>(), d, grad_scale, l2wrap_factor);
  });
  check_launch("cross_entropy_kernel");
}

}  // namespace rwkv::cuda
