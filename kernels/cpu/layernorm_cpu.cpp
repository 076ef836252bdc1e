// LayerNorm on the CPU. Forward: one row at a time (two passes: mean, then
// variance of the centred values, which is accurate where E[x^2]-E[x]^2 is not).
// Backward: dx per row in parallel; dweight/dbias per channel block in parallel
// over rows in order (deterministic).
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cpu {

void layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y, Tensor& mean,
                       Tensor& rstd, float eps) {
  const int64_t N = x.dim(0), C = x.dim(1);
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    const T* wp = weight.data<T>();
    const T* bp = bias.data<T>();
    T* yp = y.data<T>();
    T* mp = mean.data<T>();
    T* rp = rstd.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = xp + n * C;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < C; ++c) sum += row[c];
      const T mu = sum / static_cast<T>(C);
      T var = 0;
#pragma omp simd reduction(+ : var)
      for (int64_t c = 0; c < C; ++c) var += (row[c] - mu) * (row[c] - mu);
      const T rs = T(1) / std::sqrt(var / static_cast<T>(C) + static_cast<T>(eps));
      mp[n] = mu;
      rp[n] = rs;
      T* out = yp + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] = layernorm_apply(row[c], mu, rs, wp[c], bp[c]);
    }
  });
}

void layernorm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const int64_t N = x.dim(0), C = x.dim(1);
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    const T* wp = weight.data<T>();
    const T* mp = mean.data<T>();
    const T* rp = rstd.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    T* dwp = dweight.data<T>();
    T* dbp = dbias.data<T>();
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * weight.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = xp + n * C;
      const T* drow = dyp + n * C;
      const T mu = mp[n], rs = rp[n];
      T sum_dxhat = 0, sum_dxhat_xhat = 0;
#pragma omp simd reduction(+ : sum_dxhat, sum_dxhat_xhat)
      for (int64_t c = 0; c < C; ++c) {
        const T dxhat = drow[c] * wp[c];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * (row[c] - mu) * rs;
      }
      const T mean_dxhat = sum_dxhat / static_cast<T>(C);
      const T mean_dxhat_xhat = sum_dxhat_xhat / static_cast<T>(C);
      T* out = dxp + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T xhat = (row[c] - mu) * rs;
        out[c] += rs * (drow[c] * wp[c] - mean_dxhat - xhat * mean_dxhat_xhat);
      }
    }
    // dweight = sum_n dy * xhat, dbias = sum_n dy.
    const int64_t blocks = (C + kReduceChannelBlock - 1) / kReduceChannelBlock;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kReduceChannelBlock, c1 = std::min(C, c0 + kReduceChannelBlock);
      T dw[kReduceChannelBlock] = {}, db[kReduceChannelBlock] = {};
      for (int64_t n = 0; n < N; ++n) {
        const T mu = mp[n], rs = rp[n];
        for (int64_t c = c0; c < c1; ++c) {
          dw[c - c0] += dyp[n * C + c] * (xp[n * C + c] - mu) * rs;
          db[c - c0] += dyp[n * C + c];
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        dwp[c] += dw[c - c0];
        dbp[c] += db[c - c0];
      }
    }
  });
}

}  // namespace rwkv::cpu
