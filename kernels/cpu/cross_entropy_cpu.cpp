// Softmax cross-entropy (+ L2Wrap gradient) on the CPU, one row per task:
// pass 1 finds the max (and first argmax); pass 2 sums exp(l - max), parking
// each exp in the gradient row when there is one; pass 3 scales them into
// grad_scale * softmax, then the one-hot and L2Wrap terms are added. With a
// 50K vocabulary this is the largest elementwise op of a step, so the exp is
// the vectorised fast_exp in f32 (about 2 ulp) and the exact one in f64.
#include <cmath>

#include "kernels/fast_exp.h"

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"

namespace rwkv::cpu {

void cross_entropy(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& dlogits, float grad_scale,
                   float l2wrap_factor) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  const int32_t* tp = targets.data<int32_t>();
  for (int64_t n = 0; n < N; ++n) {
    RWKV_CHECK(tp[n] >= 0 && tp[n] < V, "cross_entropy: target ", tp[n], " at row ", n,
               " is outside the vocabulary [0, ", V, ")");
  }
  const bool want_grad = dlogits.defined();
  visit_float(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* lp = logits.data<T>();
    T* lossp = losses.data<T>();
    T* gp = want_grad ? dlogits.data<T>() : nullptr;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* row = lp + n * V;
      T max_val = row[0];
      int64_t argmax = 0;
      for (int64_t i = 1; i < V; ++i) {
        if (row[i] > max_val) {
          max_val = row[i];
          argmax = i;
        }
      }
      const T target_logit = row[tp[n]];
      T sum = 0;
      if (gp) {
        // row may alias the gradient row: each element is read before it is written.
        T* grow = gp + n * V;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < V; ++i) {
          const T e = exp_t(row[i] - max_val);
          grow[i] = e;
          sum += e;
        }
        const T scale = static_cast<T>(grad_scale) / sum;
#pragma omp simd
        for (int64_t i = 0; i < V; ++i) grow[i] *= scale;
        grow[tp[n]] -= static_cast<T>(grad_scale);
        grow[argmax] += static_cast<T>(l2wrap_factor) * max_val;
      } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < V; ++i) sum += exp_t(row[i] - max_val);
      }
      lossp[n] = log_t(sum) + max_val - target_logit;
    }
  });
}

}  // namespace rwkv::cpu
