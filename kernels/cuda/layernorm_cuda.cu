// LayerNorm over the last dimension on CUDA. x, y, dy, dx are f32 or bf16;
// weight, bias, mean, rstd and the parameter gradients are f32; all maths is fp32.
#include "kernels/cuda/column_reduce.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cuda {

namespace {

constexpr int kWarps = kLayerNormWarpsPerBlock;

// Forward, one warp per row (lanes stride over the channels, so each warp-wide
// load is coalesced):
//   mean = sum_c x_c / C,  rstd = 1 / sqrt(sum_c (x_c - mean)^2 / C + eps)
//   y_c  = (x_c - mean) * rstd * weight_c + bias_c
// Two passes over the row for the statistics (the numerically safe variance;
// the second and third reads of the row hit L1/L2), fp32 throughout.
template <typename T>
__global__ void layernorm_forward_kernel(int64_t N, int64_t C,
                                         const T* __restrict__ x,           // [N, C]
                                         const float* __restrict__ weight,  // [C]
                                         const float* __restrict__ bias,    // [C]
                                         T* __restrict__ y,                 // [N, C]
                                         float* __restrict__ mean,          // [N]
                                         float* __restrict__ rstd,          // [N]
                                         float eps) {
  const int lane = threadIdx.x & 31;
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); row < N;
       row += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T* xr = x + row * C;
    float sum = 0.0f;
    for (int64_t c = lane; c < C; c += 32) sum += load_as_float(xr[c]);
    const float m = warp_sum(sum) * inv_c;
    float sq = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float d = load_as_float(xr[c]) - m;
      sq += d * d;
    }
    const float rs = 1.0f / sqrt_t(warp_sum(sq) * inv_c + eps);
    T* yr = y + row * C;
    for (int64_t c = lane; c < C; c += 32) {
      yr[c] = store_from_float<T>(layernorm_apply(load_as_float(xr[c]), m, rs, weight[c], bias[c]));
    }
    if (lane == 0) {
      mean[row] = m;
      rstd[row] = rs;
    }
  }
}

// Input gradient, one warp per row. With xhat_c = (x_c - mean) * rstd and
// dxhat_c = dy_c * weight_c:
//   dx_c += rstd * (dxhat_c - mean_c(dxhat) - xhat_c * mean_c(dxhat * xhat))
// (accumulated: dx is the residual stream's gradient).
template <typename T>
__global__ void layernorm_backward_dx_kernel(int64_t N, int64_t C,
                                             const T* __restrict__ x,           // [N, C]
                                             const float* __restrict__ weight,  // [C]
                                             const float* __restrict__ mean,    // [N]
                                             const float* __restrict__ rstd,    // [N]
                                             const T* __restrict__ dy,          // [N, C]
                                             T* __restrict__ dx) {              // [N, C]
  const int lane = threadIdx.x & 31;
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); row < N;
       row += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T* xr = x + row * C;
    const T* dyr = dy + row * C;
    const float m = mean[row], rs = rstd[row];
    float s_dxhat = 0.0f, s_dxhat_xhat = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float xhat = (load_as_float(xr[c]) - m) * rs;
      const float dxhat = load_as_float(dyr[c]) * weight[c];
      s_dxhat += dxhat;
      s_dxhat_xhat += dxhat * xhat;
    }
    const float mean_dxhat = warp_sum(s_dxhat) * inv_c;
    const float mean_dxhat_xhat = warp_sum(s_dxhat_xhat) * inv_c;
    T* dxr = dx + row * C;
    for (int64_t c = lane; c < C; c += 32) {
      const float xhat = (load_as_float(xr[c]) - m) * rs;
      const float dxhat = load_as_float(dyr[c]) * weight[c];
      const float g = rs * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
      dxr[c] = store_from_float<T>(load_as_float(dxr[c]) + g);
    }
  }
}

// Parameter gradients, first pass of a column reduction (ColumnReducePlan):
//   dweight_c = sum_n dy[n, c] * xhat[n, c],  dbias_c = sum_n dy[n, c]
// Block (32 channels x 8 row-lanes) per (channel block, chunk of rows); each
// row-lane sums every 8th row of the chunk, then row-lane 0 adds the 8 lane
// sums in order and writes the chunk's partials [2, chunks, C].
template <typename T>
__global__ void layernorm_backward_params_kernel(int64_t N, int64_t C, int64_t rows_per_chunk,
                                                 const T* __restrict__ x,         // [N, C]
                                                 const float* __restrict__ mean,  // [N]
                                                 const float* __restrict__ rstd,  // [N]
                                                 const T* __restrict__ dy,        // [N, C]
                                                 float* __restrict__ partial) {   // [2, chunks, C]
  __shared__ float sums[2][kColumnBlockRowLanes][kColumnBlockChannels];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnBlockChannels + threadIdx.x;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < N ? begin + rows_per_chunk : N;
  float s_w = 0.0f, s_b = 0.0f;
  if (c < C) {
    for (int64_t n = begin + threadIdx.y; n < end; n += kColumnBlockRowLanes) {
      const float g = load_as_float(dy[n * C + c]);
      s_w += g * (load_as_float(x[n * C + c]) - mean[n]) * rstd[n];
      s_b += g;
    }
  }
  sums[0][threadIdx.y][threadIdx.x] = s_w;
  sums[1][threadIdx.y][threadIdx.x] = s_b;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float w = 0.0f, b = 0.0f;
    for (int lane = 0; lane < kColumnBlockRowLanes; ++lane) {
      w += sums[0][lane][threadIdx.x];
      b += sums[1][lane][threadIdx.x];
    }
    partial[chunk * C + c] = w;
    partial[(chunks + chunk) * C + c] = b;
  }
}

}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y, Tensor& mean,
                       Tensor& rstd, float eps) {
  set_device(x);
  const int64_t N = x.dim(0), C = x.dim(1);
  if (N == 0) return;
  dispatch_float(x, "layernorm_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(layernorm_forward_kernel<T>, grid_u32(row_blocks(N, kWarps)), kWarps * 32, 0, kStream,
        N, C, x.data<T>(), weight.data<float>(), bias.data<float>(), y.data<T>(), mean.data<float>(),
        rstd.data<float>(), eps);
  });
  check_launch("layernorm_forward_kernel");
}

void layernorm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  set_device(x);
  const int64_t N = x.dim(0), C = x.dim(1);
  if (N == 0 || C == 0) return;
  const ColumnReducePlan plan = column_reduce_plan(N, C);
  DeviceBuffer partial(static_cast<size_t>(plan.partial_floats(2, C)) * sizeof(float));
  dispatch_float(x, "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(layernorm_backward_dx_kernel<T>, grid_u32(row_blocks(N, kWarps)), kWarps * 32, 0, kStream,
        N, C, x.data<T>(), weight.data<float>(), mean.data<float>(), rstd.data<float>(), dy.data<T>(), dx.data<T>());
    check_launch("layernorm_backward_dx_kernel");
    const dim3 grid(grid_u32(plan.channel_blocks), grid_u32(plan.chunks));
    const dim3 block(kColumnBlockChannels, kColumnBlockRowLanes);
    launch_kernel(layernorm_backward_params_kernel<T>, grid, block, 0, kStream, N, C, plan.rows_per_chunk, x.data<T>(),
                                                                      mean.data<float>(), rstd.data<float>(),
                                                                      dy.data<T>(), partial.as<float>());
    check_launch("layernorm_backward_params_kernel");
  });
  ColumnOutputs outputs;
  outputs.out[0] = dweight.data<float>();
  outputs.out[1] = dbias.data<float>();
  outputs.count = 2;
  finalize_column_sums(partial.as<float>(), plan.chunks, C, outputs);
}

}  // namespace rwkv::cuda
