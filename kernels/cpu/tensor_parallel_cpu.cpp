// Tensor-parallel helpers on the CPU (maths in kernels/tensor_parallel.h).
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"
#include "kernels/softmax_math.h"

namespace rwkv::cpu {

void copy_columns(const Tensor& src, int64_t col0, Tensor& dst) {
  const int64_t N = dst.dim(0), w = dst.dim(1), Cs = src.dim(1);
  const size_t elem = dtype_size(src.dtype());
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(d + static_cast<size_t>(n * w) * elem, s + static_cast<size_t>(n * Cs + col0) * elem, static_cast<size_t>(w) * elem);
}

void add_columns(const Tensor& src, Tensor& dst, int64_t col0) {
  const int64_t N = src.dim(0), w = src.dim(1), Cd = dst.dim(1);
  visit_float(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* s = src.data<T>();
    T* d = dst.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) d[n * Cd + col0 + j] += s[n * w + j];
    }
  });
}

void softmax_row_stats(const Tensor& logits, int64_t valid_cols, int64_t col_offset, Tensor& row_max,
                       Tensor& row_sum, Tensor& row_argmax) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  visit_float(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* lp = logits.data<T>();
    T* mp = row_max.data<T>();
    T* sp = row_sum.data<T>();
    int32_t* ap = row_argmax.data<int32_t>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = lp + n * V;
      if (valid_cols == 0) {
        mp[n] = T(0), sp[n] = T(0), ap[n] = -1;
        continue;
      }
      T m = row[0];
      int64_t a = 0;
      for (int64_t i = 1; i < valid_cols; ++i) {
        if (row[i] > m) m = row[i], a = i;
      }
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < valid_cols; ++i) s += exp_t(row[i] - m);
      mp[n] = m;
      sp[n] = s;
      ap[n] = static_cast<int32_t>(a + col_offset);
    }
  });
}

void merge_softmax_stats(const Tensor& maxes, const Tensor& sums, const Tensor& argmaxes, Tensor& row_max,
                         Tensor& row_sum, Tensor& row_argmax) {
  const int64_t P = maxes.dim(0), N = maxes.dim(1);
  visit_float(maxes.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* m = maxes.data<T>();
    const T* s = sums.data<T>();
    const int32_t* a = argmaxes.data<int32_t>();
    for (int64_t n = 0; n < N; ++n) {
      SoftmaxRowStats<T> r{m[n], s[n], a[n]};
      for (int64_t q = 1; q < P; ++q) r = merge_softmax(r, SoftmaxRowStats<T>{m[q * N + n], s[q * N + n], a[q * N + n]});
      row_max.data<T>()[n] = r.m;
      row_sum.data<T>()[n] = r.s;
      row_argmax.data<int32_t>()[n] = r.a;
    }
  });
}

void ce_losses_from_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, Tensor& losses) {
  const int64_t N = row_max.dim(0);
  visit_float(row_max.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *m = row_max.data<T>(), *s = row_sum.data<T>(), *t = target_logit.data<T>();
    T* out = losses.data<T>();
    for (int64_t n = 0; n < N; ++n)
      out[n] = static_cast<T>(ce_loss_from_stats(static_cast<double>(m[n]), static_cast<double>(s[n]), static_cast<double>(t[n])));
  });
}

void vocab_parallel_ce_backward(const Tensor& logits, int64_t valid_cols, int64_t col_offset, const Tensor& targets,
                                const Tensor& row_max, const Tensor& row_sum, const Tensor& row_argmax,
                                Tensor& target_logit, Tensor& dlogits, float grad_scale, float l2wrap_factor) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  visit_float(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* lp = logits.data<T>();
    const int32_t* tp = targets.data<int32_t>();
    const T* mp = row_max.data<T>();
    const T* sp = row_sum.data<T>();
    const int32_t* ap = row_argmax.data<int32_t>();
    T* tl = target_logit.data<T>();
    T* gp = dlogits.defined() ? dlogits.data<T>() : nullptr;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = lp + n * V;
      const int64_t target = static_cast<int64_t>(tp[n]) - col_offset;
      const bool local_target = target >= 0 && target < valid_cols;
      tl[n] = local_target ? row[target] : T(0);
      if (!gp) continue;
      T* grow = gp + n * V;
      const T m = mp[n], scale = static_cast<T>(grad_scale) / sp[n];
      const int64_t argmax = static_cast<int64_t>(ap[n]) - col_offset;
#pragma omp simd
      for (int64_t i = 0; i < valid_cols; ++i) grow[i] = exp_t(row[i] - m) * scale;
      for (int64_t i = valid_cols; i < V; ++i) grow[i] = T(0);
      if (local_target) grow[target] -= static_cast<T>(grad_scale);
      if (argmax >= 0 && argmax < valid_cols) grow[argmax] += static_cast<T>(l2wrap_factor) * m;
    }
  });
}

}  // namespace rwkv::cpu
