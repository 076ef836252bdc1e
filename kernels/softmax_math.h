// Softmax statistics of a set of logits, and how two disjoint sets combine:
// (m, s, a) = (max, sum exp(x - m), first argmax). Shared by the CPU and CUDA
// vocab-parallel cross-entropy so both merge in exactly the same way.
#pragma once

#include <cstdint>

#include "core/hd.h"
#include "kernels/fast_exp.h"

namespace rwkv {

template <typename T>
struct SoftmaxRowStats {
  T m;
  T s;        // 0 for an empty set (then m is meaningless)
  int32_t a;  // global column of the first maximum
};

// Combines disjoint sets: the larger max wins, ties go to the smaller column;
// each sum is rescaled to the new max. Empty sets contribute nothing.
template <typename T>
RWKV_HD SoftmaxRowStats<T> merge_softmax(const SoftmaxRowStats<T>& x, const SoftmaxRowStats<T>& y) {
  if (x.s == T(0)) return y;
  if (y.s == T(0)) return x;
  SoftmaxRowStats<T> r;
  r.m = x.m > y.m ? x.m : y.m;
  r.s = x.s * exact_exp(x.m - r.m) + y.s * exact_exp(y.m - r.m);
  const bool take_y = y.m > x.m || (y.m == x.m && y.a < x.a);
  r.a = take_y ? y.a : x.a;
  return r;
}

// Cross-entropy of a row from its merged statistics: loss = m + log s - x_target,
// in double whatever the storage (the CPU and CUDA kernels both round the
// result to the losses' dtype once).
RWKV_HD double ce_loss_from_stats(double m, double s, double target_logit) { return m + log(s) - target_logit; }

}  // namespace rwkv
