// Tensor-parallel helpers on CUDA (maths in kernels/tensor_parallel.h and
// kernels/softmax_math.h): column-block copies and adds, and the three steps
// of the vocab-parallel cross-entropy. f32/bf16 logits, f32 statistics.
#include <cmath>

#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/softmax_math.h"

namespace rwkv::cuda {

namespace {

constexpr int kThreads = kCrossEntropyThreads;

// dst[n, col0 + j] += src[n, j], one thread per element of src.
template <typename T>
__global__ void add_columns_kernel(int64_t N, int64_t w, int64_t Cd, int64_t col0, const T* src, T* dst) {
  for (int64_t i = grid_start(); i < N * w; i += grid_stride()) {
    const int64_t n = i / w, j = i - n * w;
    T* d = dst + n * Cd + col0 + j;
    *d = store_from_float<T>(load_as_float(*d) + load_as_float(src[i]));
  }
}

// Per-thread running (max, sum, first argmax) merged over the block in a fixed
// tree: warp butterflies, then warp 0 over the warps' results.
__device__ SoftmaxRowStats<float> block_merge(SoftmaxRowStats<float> x, SoftmaxRowStats<float>* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    SoftmaxRowStats<float> y{__shfl_xor_sync(0xffffffffu, x.m, offset), __shfl_xor_sync(0xffffffffu, x.s, offset),
                             __shfl_xor_sync(0xffffffffu, x.a, offset)};
    x = merge_softmax(x, y);
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    x = lane < warps ? scratch[lane] : SoftmaxRowStats<float>{0.0f, 0.0f, -1};
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      SoftmaxRowStats<float> y{__shfl_xor_sync(0xffffffffu, x.m, offset), __shfl_xor_sync(0xffffffffu, x.s, offset),
                               __shfl_xor_sync(0xffffffffu, x.a, offset)};
      x = merge_softmax(x, y);
    }
    if (lane == 0) scratch[0] = x;
  }
  __syncthreads();
  return scratch[0];
}

// One block per row: statistics of the first valid_cols columns.
template <typename T>
__global__ void softmax_row_stats_kernel(int64_t N, int64_t V, int64_t valid_cols, int64_t col_offset,
                                         const T* __restrict__ logits, float* __restrict__ row_max,
                                         float* __restrict__ row_sum, int32_t* __restrict__ row_argmax) {
  __shared__ SoftmaxRowStats<float> scratch[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* row = logits + n * V;
    SoftmaxRowStats<float> st{0.0f, 0.0f, -1};
    for (int64_t i = threadIdx.x; i < valid_cols; i += blockDim.x) {
      st = merge_softmax(st, SoftmaxRowStats<float>{load_as_float(row[i]), 1.0f, static_cast<int32_t>(i + col_offset)});
    }
    st = block_merge(st, scratch);
    if (threadIdx.x == 0) {
      row_max[n] = st.m;
      row_sum[n] = st.s;
      row_argmax[n] = st.a;
    }
  }
}

// One thread per row: merge the P ranks' statistics in rank order.
__global__ void merge_softmax_stats_kernel(int64_t P, int64_t N, const float* maxes, const float* sums,
                                           const int32_t* argmaxes, float* row_max, float* row_sum,
                                           int32_t* row_argmax) {
  for (int64_t n = grid_start(); n < N; n += grid_stride()) {
    SoftmaxRowStats<float> r{maxes[n], sums[n], argmaxes[n]};
    for (int64_t q = 1; q < P; ++q) r = merge_softmax(r, SoftmaxRowStats<float>{maxes[q * N + n], sums[q * N + n], argmaxes[q * N + n]});
    row_max[n] = r.m;
    row_sum[n] = r.s;
    row_argmax[n] = r.a;
  }
}

// losses_n = m_n + log s_n - target_logit_n in double, one thread per row.
__global__ void ce_losses_from_stats_kernel(int64_t N, const float* __restrict__ row_max,
                                            const float* __restrict__ row_sum, const float* __restrict__ target_logit,
                                            float* __restrict__ losses) {
  for (int64_t n = grid_start(); n < N; n += grid_stride())
    losses[n] = static_cast<float>(ce_loss_from_stats(row_max[n], row_sum[n], target_logit[n]));
}

// One block per row: the target's logit where it is local, and the gradient.
// dlogits may be logits: each element is read, then written, by one thread,
// and the target logit is read before the block's first write.
template <typename T>
__global__ void vocab_parallel_ce_backward_kernel(int64_t N, int64_t V, int64_t valid_cols, int64_t col_offset,
                                                  const T* logits, const int32_t* __restrict__ targets,
                                                  const float* __restrict__ row_max, const float* __restrict__ row_sum,
                                                  const int32_t* __restrict__ row_argmax, float* __restrict__ target_logit,
                                                  T* dlogits, float grad_scale, float l2wrap_factor) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* row = logits + n * V;
    const int64_t target = static_cast<int64_t>(targets[n]) - col_offset;
    const bool local_target = target >= 0 && target < valid_cols;
    if (threadIdx.x == 0) target_logit[n] = local_target ? load_as_float(row[target]) : 0.0f;
    if (dlogits == nullptr) continue;
    __syncthreads();  // the target logit is read before any thread overwrites the row
    const float m = row_max[n], scale = grad_scale / row_sum[n];
    const int64_t argmax = static_cast<int64_t>(row_argmax[n]) - col_offset;
    T* grow = dlogits + n * V;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      float g = 0.0f;
      if (i < valid_cols) {
        g = exact_exp(load_as_float(row[i]) - m) * scale;
        if (i == target) g -= grad_scale;
        if (i == argmax) g += l2wrap_factor * m;
      }
      grow[i] = store_from_float<T>(g);
    }
    __syncthreads();
  }
}

}  // namespace

void copy_columns(const Tensor& src, int64_t col0, Tensor& dst) {
  set_device(src);
  const size_t elem = dtype_size(src.dtype());
  const int64_t N = dst.dim(0), w = dst.dim(1), Cs = src.dim(1);
  if (N == 0 || w == 0) return;
  check_cuda(cudaMemcpy2DAsync(dst.raw_data(), static_cast<size_t>(w) * elem,
                               static_cast<const char*>(src.raw_data()) + static_cast<size_t>(col0) * elem,
                               static_cast<size_t>(Cs) * elem, static_cast<size_t>(w) * elem, static_cast<size_t>(N),
                               cudaMemcpyDeviceToDevice, kStream),
             "copy_columns (cudaMemcpy2DAsync)");
}

void add_columns(const Tensor& src, Tensor& dst, int64_t col0) {
  set_device(dst);
  const int64_t N = src.dim(0), w = src.dim(1), Cd = dst.dim(1);
  if (N * w == 0) return;
  dispatch_float(src, "add_columns", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(add_columns_kernel<T>, grid_u32(elementwise_blocks(N * w)), kElementwiseThreads, 0, kStream,
        N, w, Cd, col0, src.data<T>(), dst.data<T>());
  });
  check_launch("add_columns_kernel");
}

void softmax_row_stats(const Tensor& logits, int64_t valid_cols, int64_t col_offset, Tensor& row_max,
                       Tensor& row_sum, Tensor& row_argmax) {
  set_device(logits);
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (N == 0) return;
  dispatch_float(logits, "softmax_row_stats", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(softmax_row_stats_kernel<T>, grid_u32(row_blocks(N, 1)), kThreads, 0, kStream,
        N, V, valid_cols, col_offset, logits.data<T>(), row_max.data<float>(), row_sum.data<float>(),
        row_argmax.data<int32_t>());
  });
  check_launch("softmax_row_stats_kernel");
}

void merge_softmax_stats(const Tensor& maxes, const Tensor& sums, const Tensor& argmaxes, Tensor& row_max,
                         Tensor& row_sum, Tensor& row_argmax) {
  set_device(maxes);
  const int64_t P = maxes.dim(0), N = maxes.dim(1);
  if (N == 0) return;
  launch_kernel(merge_softmax_stats_kernel, grid_u32(elementwise_blocks(N)), kElementwiseThreads, 0, kStream,
      P, N, maxes.data<float>(), sums.data<float>(), argmaxes.data<int32_t>(), row_max.data<float>(),
      row_sum.data<float>(), row_argmax.data<int32_t>());
  check_launch("merge_softmax_stats_kernel");
}

void ce_losses_from_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, Tensor& losses) {
  set_device(row_max);
  const int64_t N = row_max.dim(0);
  if (N == 0) return;
  launch_kernel(ce_losses_from_stats_kernel, grid_u32(elementwise_blocks(N)), kElementwiseThreads, 0, kStream,
      N, row_max.data<float>(), row_sum.data<float>(), target_logit.data<float>(), losses.data<float>());
  check_launch("ce_losses_from_stats_kernel");
}

void vocab_parallel_ce_backward(const Tensor& logits, int64_t valid_cols, int64_t col_offset, const Tensor& targets,
                                const Tensor& row_max, const Tensor& row_sum, const Tensor& row_argmax,
                                Tensor& target_logit, Tensor& dlogits, float grad_scale, float l2wrap_factor) {
  set_device(logits);
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (N == 0) return;
  dispatch_float(logits, "vocab_parallel_ce_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(vocab_parallel_ce_backward_kernel<T>, grid_u32(row_blocks(N, 1)), kThreads, 0, kStream,
        N, V, valid_cols, col_offset, logits.data<T>(), targets.data<int32_t>(), row_max.data<float>(),
        row_sum.data<float>(), row_argmax.data<int32_t>(), target_logit.data<float>(),
        dlogits.defined() ? dlogits.data<T>() : nullptr, grad_scale, l2wrap_factor);
  });
  check_launch("vocab_parallel_ce_backward_kernel");
}

}  // namespace rwkv::cuda
