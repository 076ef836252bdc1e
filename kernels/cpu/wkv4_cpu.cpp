// WKV-4 on the CPU (maths in kernels/wkv4_math.h).
//
// Every (batch, channel) pair is an independent scan over time. Memory is
// [B, T, C] with channels contiguous, so the scan runs over a block of
// kChannelBlock neighbouring channels at once: at each time step the block's
// k, v, y are contiguous and the per-channel state lives in small arrays, which
// lets the compiler vectorise across channels (fast_exp is branch-free for
// exactly this reason). Threads share out the (batch, channel block) pairs.
// Sums over the batch (the decay and first gradients) go through a [B, C]
// scratch and are added in batch order, so results do not depend on threads.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/wkv4_math.h"

namespace rwkv::cpu {

namespace {

constexpr int64_t kChannelBlock = 64;

template <typename T>
void wkv4_forward_impl(const T* time_decay, const T* time_first, const T* k, const T* v, T* y,
                       T* state,  // [3, B, C] or nullptr
                       int64_t B, int64_t T_len, int64_t C) {
  const int64_t blocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kChannelBlock;
      const int64_t n = std::min(kChannelBlock, C - c0);
      T w[kChannelBlock], u[kChannelBlock], aa[kChannelBlock], bb[kChannelBlock], pp[kChannelBlock];
      for (int64_t j = 0; j < n; ++j) {
        w[j] = wkv4_decay(time_decay[c0 + j]);
        u[j] = time_first[c0 + j];
        Wkv4Forward<T> fresh;
        aa[j] = state ? state[(0 * B + b) * C + c0 + j] : fresh.aa;
        bb[j] = state ? state[(1 * B + b) * C + c0 + j] : fresh.bb;
        pp[j] = state ? state[(2 * B + b) * C + c0 + j] : fresh.pp;
      }
      for (int64_t t = 0; t < T_len; ++t) {
        const int64_t row = (b * T_len + t) * C + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          Wkv4Forward<T> s{aa[j], bb[j], pp[j]};
          y[row + j] = s.step(w[j], u[j], k[row + j], v[row + j]);
          aa[j] = s.aa;
          bb[j] = s.bb;
          pp[j] = s.pp;
        }
      }
      if (state) {
        for (int64_t j = 0; j < n; ++j) {
          state[(0 * B + b) * C + c0 + j] = aa[j];
          state[(1 * B + b) * C + c0 + j] = bb[j];
          state[(2 * B + b) * C + c0 + j] = pp[j];
        }
      }
    }
  }
}

template <typename T>
void wkv4_backward_impl(const T* time_decay, const T* time_first, const T* k, const T* v, const T* gy,
                        T* g_time_decay, T* g_time_first, T* gk, T* gv, int64_t B, int64_t T_len, int64_t C) {
  const int64_t blocks = (C + kChannelBlock - 1) / kChannelBlock;
  std::vector<T> gw_partial(static_cast<size_t>(B * C)), gu_partial(static_cast<size_t>(B * C));  // [B, C]
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kChannelBlock;
      const int64_t n = std::min(kChannelBlock, C - c0);
      T w[kChannelBlock], u[kChannelBlock];
      for (int64_t j = 0; j < n; ++j) {
        w[j] = wkv4_decay(time_decay[c0 + j]);
        u[j] = time_first[c0 + j];
      }
      // Forward sweep: y_t goes to gv and log D_t to gk, read back below.
      T aa[kChannelBlock], bb[kChannelBlock], da[kChannelBlock], db[kChannelBlock], pp[kChannelBlock];
      T gw[kChannelBlock], gu[kChannelBlock];
      for (int64_t j = 0; j < n; ++j) {
        Wkv4BackwardForwardSweep<T> fresh;
        aa[j] = fresh.aa, bb[j] = fresh.bb, da[j] = fresh.da, db[j] = fresh.db, pp[j] = fresh.pp;
        gw[j] = 0, gu[j] = 0;
      }
      for (int64_t t = 0; t < T_len; ++t) {
        const int64_t row = (b * T_len + t) * C + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          Wkv4BackwardForwardSweep<T> s{aa[j], bb[j], da[j], db[j], pp[j], gw[j], gu[j]};
          T y, ld;
          s.step(w[j], u[j], k[row + j], v[row + j], gy[row + j], y, ld);
          gv[row + j] = y;
          gk[row + j] = ld;
          aa[j] = s.aa, bb[j] = s.bb, da[j] = s.da, db[j] = s.db, pp[j] = s.pp, gw[j] = s.gw, gu[j] = s.gu;
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        gw_partial[static_cast<size_t>(b * C + c0 + j)] = gw[j] * w[j];  // chain rule through w = -exp(decay)
        gu_partial[static_cast<size_t>(b * C + c0 + j)] = gu[j];
      }
      // Reverse sweep.
      T gg[kChannelBlock], hh[kChannelBlock], qq[kChannelBlock];
      for (int64_t j = 0; j < n; ++j) {
        Wkv4BackwardReverseSweep<T> fresh;
        gg[j] = fresh.gg, hh[j] = fresh.hh, qq[j] = fresh.qq;
      }
      for (int64_t t = T_len - 1; t >= 0; --t) {
        const int64_t row = (b * T_len + t) * C + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          Wkv4BackwardReverseSweep<T> s{gg[j], hh[j], qq[j]};
          const T y = gv[row + j], ld = gk[row + j];
          s.step(w[j], u[j], k[row + j], v[row + j], gy[row + j], y, ld, gk[row + j], gv[row + j]);
          gg[j] = s.gg, hh[j] = s.hh, qq[j] = s.qq;
        }
      }
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      g_time_decay[c] += gw_partial[static_cast<size_t>(b * C + c)];
      g_time_first[c] += gu_partial[static_cast<size_t>(b * C + c)];
    }
  }
}

}  // namespace

void wkv4_forward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v, Tensor& y,
                  Tensor& state) {
  const int64_t B = k.dim(0), T = k.dim(1), C = k.dim(2);
  if (k.dtype() == DType::F64) {
    wkv4_forward_impl(time_decay.data<double>(), time_first.data<double>(), k.data<double>(), v.data<double>(),
                      y.data<double>(), state.defined() ? state.data<double>() : nullptr, B, T, C);
  } else {
    wkv4_forward_impl(time_decay.data<float>(), time_first.data<float>(), k.data<float>(), v.data<float>(),
                      y.data<float>(), state.defined() ? state.data<float>() : nullptr, B, T, C);
  }
}

void wkv4_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
                   const Tensor& gy, Tensor& g_time_decay, Tensor& g_time_first, Tensor& gk, Tensor& gv) {
  const int64_t B = k.dim(0), T = k.dim(1), C = k.dim(2);
  if (k.dtype() == DType::F64) {
    wkv4_backward_impl(time_decay.data<double>(), time_first.data<double>(), k.data<double>(), v.data<double>(),
                       gy.data<double>(), g_time_decay.data<double>(), g_time_first.data<double>(),
                       gk.data<double>(), gv.data<double>(), B, T, C);
  } else {
    wkv4_backward_impl(time_decay.data<float>(), time_first.data<float>(), k.data<float>(), v.data<float>(),
                       gy.data<float>(), g_time_decay.data<float>(), g_time_first.data<float>(), gk.data<float>(),
                       gv.data<float>(), B, T, C);
  }
}

}  // namespace rwkv::cpu
