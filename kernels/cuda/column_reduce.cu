#include "kernels/cuda/column_reduce.h"
#include "kernels/cuda/cuda_device.cuh"

namespace rwkv::cuda {

namespace {

// out[j][c] += sum_k partials[j, k, c] for k = 0 .. chunks-1 in order.
// Thread per (j, c); reads are coalesced across c. chunks <= 256, so each
// thread's serial loop is short.
__global__ void column_finalize_kernel(const float* __restrict__ partials,  // [count, chunks, C]
                                       int64_t chunks, int64_t C, ColumnOutputs outputs) {
  const int64_t total = outputs.count * C;
  for (int64_t i = grid_start(); i < total; i += grid_stride()) {
    const int64_t j = i / C, c = i - j * C;
    const float* p = partials + j * chunks * C + c;
    float sum = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) sum += p[k * C];
    // Select the pointer with branches: indexing the by-value argument array
    // with a runtime j would copy it to local memory (a stack frame).
    float* out = j == 0 ? outputs.out[0] : (j == 1 ? outputs.out[1] : outputs.out[2]);
    out[c] += sum;
  }
}

}  // namespace

void finalize_column_sums(const float* partials, int64_t chunks, int64_t C, const ColumnOutputs& outputs) {
  const int64_t total = outputs.count * C;
  if (total == 0 || chunks == 0) return;
  launch_kernel(column_finalize_kernel, grid_u32(elementwise_blocks(total)), kElementwiseThreads, 0, kStream, partials, chunks, C,
                                                                                                 outputs);
  check_launch("column_finalize_kernel");
}

}  // namespace rwkv::cuda
