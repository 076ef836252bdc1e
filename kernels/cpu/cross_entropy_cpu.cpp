// Softmax cross-entropy (+ L2Wrap gradient) on the CPU, one row per task:
// pass 1 finds the max (and first argmax), pass 2 sums exp(l - max), and the
// gradient pass writes grad_scale * softmax - onehot plus the L2Wrap term. The
// exp uses the accurate std::exp: the loss is what users read.
#include <cmath>

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
      T sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(row[i] - max_val);
      const T target_logit = row[tp[n]];
      lossp[n] = std::log(sum) + max_val - target_logit;
      if (gp) {
        // row may alias the gradient row: everything read from it was read above
        // except row[i] inside the loop, which is read before it is written.
        T* grow = gp + n * V;
        const T scale = static_cast<T>(grad_scale) / sum;
        for (int64_t i = 0; i < V; ++i) grow[i] = std::exp(row[i] - max_val) * scale;
        grow[tp[n]] -= static_cast<T>(grad_scale);
        grow[argmax] += static_cast<T>(l2wrap_factor) * max_val;
      }
    }
  });
}

}  // namespace rwkv::cpu
