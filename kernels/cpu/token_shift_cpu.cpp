// Token shift on the CPU: out_j[b,t] = x[b,t]*m_j + x[b,t-1]*(1-m_j).
// Forward and dx are per (b, t) row in parallel; dmix sums over all rows per
// channel block (deterministic).
#include <algorithm>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cpu {

void token_shift_forward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& outs,
                         const Tensor& shift_state) {
  const int64_t B = x.dim(0), T_len = x.dim(1), C = x.dim(2);
  const size_t J = mixes.size();
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    const T* state = shift_state.defined() ? shift_state.data<T>() : nullptr;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T_len; ++t) {
        const T* cur = xp + (b * T_len + t) * C;
        const T* prev = t > 0 ? cur - C : (state ? state + b * C : nullptr);
        for (size_t j = 0; j < J; ++j) {
          const T* m = mixes[j].data<T>();
          T* out = outs[j].data<T>() + (b * T_len + t) * C;
          if (prev) {
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) out[c] = token_shift_mix(cur[c], prev[c], m[c]);
          } else {
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) out[c] = token_shift_mix(cur[c], T(0), m[c]);
          }
        }
      }
    }
  });
}

void token_shift_backward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& douts,
                          Tensor& dx, const std::vector<Tensor>& dmixes) {
  const int64_t B = x.dim(0), T_len = x.dim(1), C = x.dim(2);
  const size_t J = mixes.size();
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    T* dxp = dx.data<T>();
    // dx[b,t] = sum_j dout_j[b,t]*m_j + dout_j[b,t+1]*(1-m_j)
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T_len; ++t) {
        const int64_t row = (b * T_len + t) * C;
        T* out = dxp + row;
        for (int64_t c = 0; c < C; ++c) out[c] = 0;
        for (size_t j = 0; j < J; ++j) {
          const T* m = mixes[j].data<T>();
          const T* d = douts[j].data<T>() + row;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += d[c] * m[c];
          if (t + 1 < T_len) {
            const T* dnext = d + C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) out[c] += dnext[c] * (T(1) - m[c]);
          }
        }
      }
    }
    // dmix_j = sum_{b,t} dout_j[b,t] * (x[b,t] - x[b,t-1])
    const int64_t blocks = (C + kReduceChannelBlock - 1) / kReduceChannelBlock;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kReduceChannelBlock, c1 = std::min(C, c0 + kReduceChannelBlock);
      for (size_t j = 0; j < J; ++j) {
        const T* d = douts[j].data<T>();
        T acc[kReduceChannelBlock] = {};
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t t = 0; t < T_len; ++t) {
            const int64_t row = (b * T_len + t) * C;
            for (int64_t c = c0; c < c1; ++c) {
              const T prev = t > 0 ? xp[row - C + c] : T(0);
              acc[c - c0] += d[row + c] * (xp[row + c] - prev);
            }
          }
        }
        T* dm = dmixes[j].data<T>();
        for (int64_t c = c0; c < c1; ++c) dm[c] += acc[c - c0];
      }
    }
  });
}

}  // namespace rwkv::cpu
