// Dropout on CUDA: an element-wise grid-stride loop over [B, T, C], f32 or
// bf16 storage, the mask from kernels/dropout_math.h (the CPU's, bit for bit),
// survivors times 1 / (1 - p) in fp32. In place: each element is read and
// written by one thread. Memory-bound, with a few 64-bit multiplies per element.
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/dropout_math.h"

namespace rwkv::cuda {

namespace {

template <typename T>
__global__ void dropout_kernel(int64_t n, int64_t T_len, int64_t C, T* x, DropoutKey key, uint64_t threshold,
                               float scale) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t c = i % C, bt = i / C;
    const bool keep = dropout_keeps(key, threshold, static_cast<uint64_t>(bt / T_len), static_cast<uint64_t>(bt % T_len),
                                    static_cast<uint64_t>(c));
    x[i] = store_from_float<T>(keep ? load_as_float(x[i]) * scale : 0.0f);
  }
}

}  // namespace

void dropout_(Tensor& x, const DropoutKey& key) {
  set_device(x);
  const int64_t n = x.numel();
  if (n == 0) return;
  const float scale = static_cast<float>(dropout_scale(key.p));
  dispatch_float(x, "dropout_", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(dropout_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream, n, x.dim(1),
                  x.dim(2), x.data<T>(), key, dropout_threshold(key.p), scale);
  });
  check_launch("dropout_kernel");
}

}  // namespace rwkv::cuda
