// WKV-4 on CUDA: one thread per (batch, channel) scan over time. The per-step
// maths is the shared Wkv4Forward / Wkv4BackwardForwardSweep /
// Wkv4BackwardReverseSweep of kernels/wkv4_math.h (the CPU backend runs the
// same code), here in fp32 with k/v/y/gy/gk/gv stored as f32 or bf16.
//
// Memory layout [B, T, C], channel fastest: at each step the 32 threads of a
// warp (32 neighbouring channels) read 32 neighbouring elements, so every load
// and store is coalesced even though each thread walks its own sequence.
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/wkv4_math.h"

namespace rwkv::cuda {

namespace {

// Forward. For scan (b, c), with w = -exp(time_decay[c]), u = time_first[c]:
//   y[b, t, c] = wkv_t = (A_t + e^{u+k_t} v_t) / (B_t + e^{u+k_t}),
//   (A, B) carried as (aa, bb) * e^{pp}  (see kernels/wkv4_math.h).
// state [3, B, C] = (aa, bb, pp): when given, the scan starts from it and
// leaves the state after the last step there; otherwise it starts empty.
template <typename T>
__global__ void wkv4_forward_kernel(int64_t B, int64_t T_len, int64_t C,
                                    const float* __restrict__ time_decay,  // [C]
                                    const float* __restrict__ time_first,  // [C]
                                    const T* __restrict__ k,               // [B, T, C]
                                    const T* __restrict__ v,               // [B, T, C]
                                    T* __restrict__ y,                     // [B, T, C]
                                    float* __restrict__ state) {           // [3, B, C] or null
  const int64_t scan = grid_start();  // b * C + c
  if (scan >= B * C) return;
  const int64_t b = scan / C, c = scan - b * C;
  const float w = wkv4_decay(time_decay[c]);
  const float u = time_first[c];
  Wkv4Forward<float> s;
  if (state != nullptr) {
    s.aa = state[scan];
    s.bb = state[B * C + scan];
    s.pp = state[2 * B * C + scan];
  }
  const int64_t base = b * T_len * C + c;
  // The loads of later steps do not depend on the recurrence, so unrolling
  // lets several of them be in flight while the scan runs.
#pragma unroll 4
  for (int64_t t = 0; t < T_len; ++t) {
    const int64_t i = base + t * C;
    y[i] = store_from_float<T>(s.step(w, u, load_as_float(k[i]), load_as_float(v[i])));
  }
  if (state != nullptr) {
    state[scan] = s.aa;
    state[B * C + scan] = s.bb;
    state[2 * B * C + scan] = s.pp;
  }
}

// Backward, one thread per scan, two sweeps:
//   forward sweep  t = 0 .. T-1: re-runs the forward, records wkv_t (ys) and
//                  ld_t = log D_t (lds), and sums dL/dw and dL/du of this scan
//                  (Wkv4BackwardForwardSweep);
//   reverse sweep  t = T-1 .. 0: reads wkv_t and ld_t back and produces
//                  gk[t], gv[t] (Wkv4BackwardReverseSweep).
// ys/lds are fp32 scratch [B, T, C]. With f32 outputs they ARE gk/gv (the
// reverse sweep reads step t's scratch before writing step t's gradients, in
// the same thread), which is why gk/ys and gv/lds carry no __restrict__.
// partial [2, B, C] receives this scan's dL/dtime_decay = dL/dw * w and
// dL/du; the batch sum happens in wkv4_param_grad_kernel, in a fixed order.
template <typename T>
__global__ void wkv4_backward_kernel(int64_t B, int64_t T_len, int64_t C,
                                     const float* __restrict__ time_decay,  // [C]
                                     const float* __restrict__ time_first,  // [C]
                                     const T* __restrict__ k,               // [B, T, C]
                                     const T* __restrict__ v,               // [B, T, C]
                                     const T* __restrict__ gy,              // [B, T, C]
                                     float* ys,                             // [B, T, C] scratch: wkv_t
                                     float* lds,                            // [B, T, C] scratch: log D_t
                                     T* gk,                                 // [B, T, C]
                                     T* gv,                                 // [B, T, C]
                                     float* __restrict__ partial) {         // [2, B, C]
  const int64_t scan = grid_start();
  if (scan >= B * C) return;
  const int64_t b = scan / C, c = scan - b * C;
  const float w = wkv4_decay(time_decay[c]);
  const float u = time_first[c];
  const int64_t base = b * T_len * C + c;

  Wkv4BackwardForwardSweep<float> fwd;
#pragma unroll 4
  for (int64_t t = 0; t < T_len; ++t) {
    const int64_t i = base + t * C;
    float y, ld;
    fwd.step(w, u, load_as_float(k[i]), load_as_float(v[i]), load_as_float(gy[i]), y, ld);
    ys[i] = y;
    lds[i] = ld;
  }
  partial[scan] = fwd.gw * w;  // chain rule through w = -exp(time_decay): dw/dtime_decay = w
  partial[B * C + scan] = fwd.gu;

  Wkv4BackwardReverseSweep<float> rev;
#pragma unroll 4
  for (int64_t t = T_len - 1; t >= 0; --t) {
    const int64_t i = base + t * C;
    float g_k, g_v;
    rev.step(w, u, load_as_float(k[i]), load_as_float(v[i]), load_as_float(gy[i]), ys[i], lds[i], g_k, g_v);
    gk[i] = store_from_float<T>(g_k);
    gv[i] = store_from_float<T>(g_v);
  }
}

// g_time_decay[c] += sum_b dL/dtime_decay[b, c],  g_time_first[c] += sum_b dL/du[b, c]
// Each batch term is added onto the gradient in b order, as the CPU kernel
// does: the same order every run, no atomics.
__global__ void wkv4_param_grad_kernel(int64_t B, int64_t C,
                                       const float* __restrict__ partial,  // [2, B, C]
                                       float* __restrict__ g_time_decay,   // [C]
                                       float* __restrict__ g_time_first) { // [C]
  for (int64_t c = grid_start(); c < C; c += grid_stride()) {
    float gw = g_time_decay[c], gu = g_time_first[c];
    for (int64_t b = 0; b < B; ++b) {
      gw += partial[b * C + c];
      gu += partial[(B + b) * C + c];
    }
    g_time_decay[c] = gw;
    g_time_first[c] = gu;
  }
}

}  // namespace

void wkv4_forward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v, Tensor& y,
                  Tensor& state) {
  set_device(k);
  const int64_t B = k.dim(0), T_len = k.dim(1), C = k.dim(2);
  if (B * C == 0 || T_len == 0) return;  // no step: the state stays as it is
  const int threads = wkv_threads_per_block(B * C, sm_count());
  const int64_t blocks = ceil_div(B * C, threads);
  float* state_ptr = state.defined() ? state.data<float>() : nullptr;
  dispatch_float(k, "wkv4_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(wkv4_forward_kernel<T>, grid_u32(blocks), threads, 0, kStream,
        B, T_len, C, time_decay.data<float>(), time_first.data<float>(), k.data<T>(), v.data<T>(), y.data<T>(),
        state_ptr);
  });
  check_launch("wkv4_forward_kernel");
}

void wkv4_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
                   const Tensor& gy, Tensor& g_time_decay, Tensor& g_time_first, Tensor& gk, Tensor& gv) {
  set_device(k);
  const int64_t B = k.dim(0), T_len = k.dim(1), C = k.dim(2);
  if (B * C == 0 || T_len == 0) return;  // empty sums: nothing to add, nothing to write
  const bool f32_outputs = gk.dtype() == DType::F32;
  DeviceBuffer workspace(static_cast<size_t>(wkv_backward_workspace_floats(B, T_len, C, f32_outputs)) *
                         sizeof(float));
  float* partial = workspace.as<float>();                     // [2, B, C]
  float* ys = f32_outputs ? gk.data<float>() : partial + 2 * B * C;                   // [B, T, C]
  float* lds = f32_outputs ? gv.data<float>() : partial + 2 * B * C + B * T_len * C;  // [B, T, C]

  const int threads = wkv_threads_per_block(B * C, sm_count());
  const int64_t blocks = ceil_div(B * C, threads);
  dispatch_float(k, "wkv4_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(wkv4_backward_kernel<T>, grid_u32(blocks), threads, 0, kStream,
        B, T_len, C, time_decay.data<float>(), time_first.data<float>(), k.data<T>(), v.data<T>(), gy.data<T>(), ys,
        lds, gk.data<T>(), gv.data<T>(), partial);
  });
  check_launch("wkv4_backward_kernel");

  launch_kernel(wkv4_param_grad_kernel, grid_u32(elementwise_blocks(C)), kElementwiseThreads, 0, kStream,
      B, C, partial, g_time_decay.data<float>(), g_time_first.data<float>());
  check_launch("wkv4_param_grad_kernel");
}

}  // namespace rwkv::cuda
