// Token shift ("time mix") on CUDA, 1 to 3 mixes in one pass over x.
// x, outs, douts, dx, shift_state: f32 or bf16; mixes and dmixes: f32.
#include "kernels/cuda/column_reduce.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cuda {

namespace {

constexpr int kMaxMixes = 3;
constexpr int kForwardThreads = 256;

// Up to three mixes and their per-mix tensors, passed by value as kernel arguments.
template <typename T>
struct MixArgs {
  const float* mix[kMaxMixes] = {};  // each [C]
  T* io[kMaxMixes] = {};             // outs (forward) or douts (backward), each [B, T, C]
  int count = 0;
};

// Forward: out_j[b, t, c] = x[b, t, c] * mix_j[c] + prev * (1 - mix_j[c]),
//   prev = x[b, t-1, c], or shift_state[b, c] (zero when absent) at t = 0.
// A block per row (b, t), threads over channels, so the row's t (for the
// t = 0 case) costs one division per row, not one per element.
template <typename T>
__global__ void token_shift_forward_kernel(int64_t rows, int64_t T_len, int64_t C,
                                           const T* __restrict__ x,            // [B, T, C]
                                           const T* __restrict__ shift_state,  // [B, C] or null
                                           MixArgs<T> args) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t b = row / T_len, t = row - b * T_len;
    const T* xr = x + row * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xv = load_as_float(xr[c]);
      const float prev = t > 0 ? load_as_float(xr[c - C])
                               : (shift_state != nullptr ? load_as_float(shift_state[b * C + c]) : 0.0f);
#pragma unroll
      for (int j = 0; j < kMaxMixes; ++j) {
        if (j < args.count) args.io[j][row * C + c] = store_from_float<T>(token_shift_mix(xv, prev, args.mix[j][c]));
      }
    }
  }
}

// Backward (dout_j the gradients of out_j; prev = 0 at t = 0, see token_shift.h):
//   dx[b, t, c]   = sum_j dout_j[b, t, c] * mix_j[c] + sum_j dout_j[b, t+1, c] * (1 - mix_j[c])
//   dmix_j[c]    += sum_{b, t} dout_j[b, t, c] * (x[b, t, c] - x[b, t-1, c])
// dx is element-wise; dmix is a column reduction over the N = B*T rows, fused
// here as the first pass of ColumnReducePlan: block (32 channels x 8 row-lanes)
// per (channel block, chunk of rows), chunk partials [count, chunks, C] written
// in a fixed order and added up by finalize_column_sums.
template <typename T>
__global__ void token_shift_backward_kernel(int64_t N, int64_t T_len, int64_t C, int64_t rows_per_chunk,
                                            const T* __restrict__ x,       // [B, T, C]
                                            MixArgs<T> args,               // douts in io[]
                                            T* __restrict__ dx,            // [B, T, C]
                                            float* __restrict__ partial) {  // [count, chunks, C]
  __shared__ float sums[kMaxMixes][kColumnBlockRowLanes][kColumnBlockChannels];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnBlockChannels + threadIdx.x;
  const int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < N ? begin + rows_per_chunk : N;
  float dmix[kMaxMixes] = {0.0f, 0.0f, 0.0f};
  if (c < C) {
    float mix[kMaxMixes];
#pragma unroll
    for (int j = 0; j < kMaxMixes; ++j) mix[j] = j < args.count ? args.mix[j][c] : 0.0f;
    for (int64_t n = begin + threadIdx.y; n < end; n += kColumnBlockRowLanes) {
      const int64_t t = n % T_len;
      const int64_t i = n * C + c;
      const float xv = load_as_float(x[i]);
      const float prev = t > 0 ? load_as_float(x[i - C]) : 0.0f;
      const bool has_next = t + 1 < T_len;
      float g = 0.0f;
#pragma unroll
      for (int j = 0; j < kMaxMixes; ++j) {
        if (j < args.count) {
          const float d = load_as_float(args.io[j][i]);
          g += d * mix[j];
          if (has_next) g += load_as_float(args.io[j][i + C]) * (1.0f - mix[j]);
          dmix[j] += d * (xv - prev);
        }
      }
      dx[i] = store_from_float<T>(g);
    }
  }
#pragma unroll
  for (int j = 0; j < kMaxMixes; ++j) sums[j][threadIdx.y][threadIdx.x] = dmix[j];
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    for (int j = 0; j < args.count; ++j) {
      float s = 0.0f;
      for (int lane = 0; lane < kColumnBlockRowLanes; ++lane) s += sums[j][lane][threadIdx.x];
      partial[(j * chunks + chunk) * C + c] = s;
    }
  }
}

}  // namespace

void token_shift_forward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& outs,
                         const Tensor& shift_state) {
  set_device(x);
  const int64_t B = x.dim(0), T_len = x.dim(1), C = x.dim(2);
  const int64_t rows = B * T_len;
  if (rows == 0 || C == 0) return;
  dispatch_float(x, "token_shift_forward", [&](auto tag) {
    using T = decltype(tag);
    MixArgs<T> args;
    args.count = static_cast<int>(mixes.size());
    for (int j = 0; j < args.count; ++j) {
      args.mix[j] = mixes[static_cast<size_t>(j)].template data<float>();
      args.io[j] = outs[static_cast<size_t>(j)].template data<T>();
    }
    const T* state = shift_state.defined() ? shift_state.data<T>() : nullptr;
    launch_kernel(token_shift_forward_kernel<T>, grid_u32(row_blocks(rows, 1)), kForwardThreads, 0, kStream,
        rows, T_len, C, x.data<T>(), state, args);
  });
  check_launch("token_shift_forward_kernel");
}

void token_shift_backward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& douts,
                          Tensor& dx, const std::vector<Tensor>& dmixes) {
  set_device(x);
  const int64_t B = x.dim(0), T_len = x.dim(1), C = x.dim(2);
  const int64_t N = B * T_len;
  if (N == 0 || C == 0) return;
  const int count = static_cast<int>(mixes.size());
  const ColumnReducePlan plan = column_reduce_plan(N, C);
  DeviceBuffer partial(static_cast<size_t>(plan.partial_floats(count, C)) * sizeof(float));
  dispatch_float(x, "token_shift_backward", [&](auto tag) {
    using T = decltype(tag);
    MixArgs<T> args;
    args.count = count;
    for (int j = 0; j < count; ++j) {
      args.mix[j] = mixes[static_cast<size_t>(j)].template data<float>();
      args.io[j] = douts[static_cast<size_t>(j)].template data<T>();
    }
    const dim3 grid(grid_u32(plan.channel_blocks), grid_u32(plan.chunks));
    const dim3 block(kColumnBlockChannels, kColumnBlockRowLanes);
    launch_kernel(token_shift_backward_kernel<T>, grid, block, 0, kStream, N, T_len, C, plan.rows_per_chunk, x.data<T>(), args,
                                                                dx.data<T>(), partial.as<float>());
  });
  check_launch("token_shift_backward_kernel");
  ColumnOutputs outputs;
  outputs.count = count;
  for (int j = 0; j < count; ++j) outputs.out[j] = dmixes[static_cast<size_t>(j)].data<float>();
  finalize_column_sums(partial.as<float>(), plan.chunks, C, outputs);
}

}  // namespace rwkv::cuda
