// Whole-tensor reductions and in-place helpers on CUDA: sum of squares (for
// the gradient norm), scale_, add_ and f32 <-> bf16 casts.
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rwkv::cuda {

namespace {

// sum(x^2), first pass: block b accumulates x_i^2 in double over its
// grid-stride slice (i = b*256 + tid, + gridDim*256, ...) and reduces the
// block in a fixed tree; block_sums[b] receives it. The grid size depends on n
// only (sum_squares_blocks), so the grouping, hence the result, is the same on
// every run and every GPU.
// Square = false: the same pass over x itself (add_mean_).
template <typename T, bool Square = true>
__global__ void sum_squares_partial_kernel(int64_t n, const T* __restrict__ x,
                                           double* __restrict__ block_sums) {  // [gridDim.x]
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const double xi = load_as_float(x[i]);
    acc += Square ? xi * xi : xi;
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) block_sums[blockIdx.x] = acc;
}

// acc[0] += (sum of the partials) / n: one block, in a fixed order.
__global__ void add_mean_final_kernel(int64_t blocks, const double* __restrict__ block_sums, int64_t n,
                                      double* __restrict__ acc) {
  __shared__ double scratch[32];
  double total = 0.0;
  for (int64_t i = threadIdx.x; i < blocks; i += blockDim.x) total += block_sums[i];
  total = block_sum(total, scratch);
  if (threadIdx.x == 0) acc[0] += total / static_cast<double>(n);
}

// Second pass, a single block: thread t adds block_sums[t], [t + 256], ... in
// order, then a fixed tree over the threads. result[0] = the total.
__global__ void sum_squares_final_kernel(int64_t blocks, const double* __restrict__ block_sums,
                                         double* __restrict__ result) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < blocks; i += blockDim.x) acc += block_sums[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) result[0] = acc;
}

// x *= factor
template <typename T>
__global__ void scale_kernel(int64_t n, T* x, float factor) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) x[i] = store_from_float<T>(load_as_float(x[i]) * factor);
}

// a += b (b may be a itself: read before write, same thread; so no __restrict__)
template <typename T>
__global__ void add_kernel(int64_t n, T* a, const T* b) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    a[i] = store_from_float<T>(load_as_float(a[i]) + load_as_float(b[i]));
  }
}

// dst = src converted; f32 -> bf16 rounds to nearest even (core/bf16.h).
template <typename Dst, typename Src>
__global__ void cast_kernel(int64_t n, const Src* __restrict__ src, Dst* __restrict__ dst) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) dst[i] = store_from_float<Dst>(load_as_float(src[i]));
}

}  // namespace

// Two kernels per tensor (partials, then a fixed-order total; sum_of_squares is the list of one), all
// partials in one scratch buffer and the totals side by side at its end, then
// one copy to the host: one synchronisation for the whole list.
std::vector<double> sums_of_squares(const std::vector<Tensor>& xs) {
  if (xs.empty()) return {};
  set_device(xs[0]);
  std::vector<int64_t> first_block(xs.size() + 1, 0);  // tensor i's partials start at first_block[i]
  for (size_t i = 0; i < xs.size(); ++i)
    first_block[i + 1] = first_block[i] + (xs[i].numel() > 0 ? sum_squares_blocks(xs[i].numel()) : 0);
  const int64_t blocks = first_block.back();
  const int64_t count = static_cast<int64_t>(xs.size());
  DeviceBuffer sums(static_cast<size_t>(blocks + count) * sizeof(double));  // [blocks] partials, then [count] totals
  double* block_sums = sums.as<double>();
  double* totals = block_sums + blocks;
  check_cuda(cudaMemsetAsync(totals, 0, static_cast<size_t>(count) * sizeof(double), kStream),
             "cudaMemsetAsync (sums_of_squares totals)");  // empty tensors: 0
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    const int64_t n = x.numel();
    if (n == 0) continue;
    const int64_t nb = first_block[i + 1] - first_block[i];
    double* partial = block_sums + first_block[i];
    dispatch_float(x, "sums_of_squares", [&](auto tag) {
      using T = decltype(tag);
      launch_kernel(sum_squares_partial_kernel<T>, grid_u32(nb), kSumSquaresThreads, 0, kStream, n, x.data<T>(), partial);
    });
    check_launch("sum_squares_partial_kernel");
    launch_kernel(sum_squares_final_kernel, 1, kSumSquaresThreads, 0, kStream, nb, partial, totals + i);
    check_launch("sum_squares_final_kernel");
  }
  std::vector<double> result(xs.size(), 0.0);
  // Synchronous copy on the default stream: waits for every kernel above.
  check_cuda(cudaMemcpy(result.data(), totals, static_cast<size_t>(count) * sizeof(double), cudaMemcpyDeviceToHost),
             "cudaMemcpy (sums_of_squares results)");
  return result;
}

double sum_of_squares(const Tensor& x) { return sums_of_squares({x})[0]; }

void add_mean_(Tensor& acc, const Tensor& values) {
  set_device(values);
  const int64_t n = values.numel();
  const int64_t blocks = sum_squares_blocks(n);
  DeviceBuffer sums(static_cast<size_t>(blocks) * sizeof(double));  // [blocks] partials
  double* block_sums = sums.as<double>();
  dispatch_float(values, "add_mean_", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(sum_squares_partial_kernel<T, false>, grid_u32(blocks), kSumSquaresThreads, 0, kStream, n, values.data<T>(),
                                                                                               block_sums);
  });
  check_launch("sum_squares_partial_kernel (sum)");
  launch_kernel(add_mean_final_kernel, 1, kSumSquaresThreads, 0, kStream, blocks, block_sums, n, acc.data<double>());
  check_launch("add_mean_final_kernel");
}

void scale_(Tensor& x, float factor) {
  set_device(x);
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x, "scale_", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(scale_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream, n, x.data<T>(), factor);
  });
  check_launch("scale_kernel");
}

void add_(Tensor& a, const Tensor& b) {
  set_device(a);
  const int64_t n = a.numel();
  if (n == 0) return;
  dispatch_float(a, "add_", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(add_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream, n, a.data<T>(), b.data<T>());
  });
  check_launch("add_kernel");
}

void cast(const Tensor& src, Tensor& dst) {
  set_device(src);
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype()) {
    if (src.raw_data() != dst.raw_data()) {
      check_cuda(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice, kStream),
                 "cudaMemcpyAsync (cast)");
    }
    return;
  }
  const unsigned int blocks = grid_u32(elementwise_blocks(n));
  if (src.dtype() == DType::F32 && dst.dtype() == DType::BF16) {
    launch_kernel(cast_kernel<bf16, float>, blocks, kElementwiseThreads, 0, kStream, n, src.data<float>(), dst.data<bf16>());
  } else if (src.dtype() == DType::BF16 && dst.dtype() == DType::F32) {
    launch_kernel(cast_kernel<float, bf16>, blocks, kElementwiseThreads, 0, kStream, n, src.data<bf16>(), dst.data<float>());
  } else {
    RWKV_FAIL("cast: CUDA casts between f32 and bf16 only, got ", src.str(), " -> ", dst.str());
  }
  check_launch("cast_kernel");
}

}  // namespace rwkv::cuda
