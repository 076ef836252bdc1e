#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"
#include "kernels/dropout_math.h"

namespace rwkv::cpu {

void dropout_(Tensor& x, const DropoutKey& key) {
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  const uint64_t threshold = dropout_threshold(key.p);
  visit_float(x.dtype(), [&](auto zero) {
    using V = decltype(zero);
    const V scale = static_cast<V>(dropout_scale(key.p));  // f32: the same float the GPU multiplies by
    V* data = x.data<V>();
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const uint64_t b = static_cast<uint64_t>(bt / T), t = static_cast<uint64_t>(bt % T);
      V* row = data + bt * C;
      for (int64_t c = 0; c < C; ++c) {
        row[c] = dropout_keeps(key, threshold, b, t, static_cast<uint64_t>(c))
                     ? row[c] * scale
                     : V(0);
      }
    }
  });
}

}  // namespace rwkv::cpu
