// Token embedding on CUDA. tokens i32 [N]; weight/out f32 or bf16 (forward);
// dout f32 or bf16 and dweight f32 (backward).
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace rwkv::cuda {

namespace {

constexpr int kForwardThreads = 128;
constexpr int kTokenTile = 1024;  // tokens staged in shared memory per step of the backward scan

// out[n, :] = weight[tokens[n], :], or zeros when tokens[n] is outside [0, V)
// (the kernel cannot raise an error without a host sync; see embedding.h).
// A block per row, threads over channels: coalesced row copies.
template <typename T>
__global__ void embedding_forward_kernel(int64_t N, int64_t V, int64_t C,
                                         const int32_t* __restrict__ tokens,  // [N]
                                         const T* __restrict__ weight,        // [V, C]
                                         T* __restrict__ out) {               // [N, C]
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int64_t tok = tokens[n];
    const bool valid = tok >= 0 && tok < V;
    const T* src = weight + (valid ? tok : 0) * C;
    T* dst = out + n * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = valid ? src[c] : store_from_float<T>(0.0f);
  }
}

// dweight[tokens[n], c] += dout[n, c], deterministically and without atomics.
// Block (channel block, partition p) owns the rows of tokens with
// tok mod P == p; it scans all N tokens in order (staged through shared
// memory, read by every thread as a broadcast) and, for the tokens it owns,
// each thread adds its channel. So every dweight element is updated by exactly
// one thread, in token order: the same order as the CPU kernel, whatever P is.
// Tokens outside [0, V) are skipped (their forward rows were zeros).
// Cost: every block reads all N token ids (cheap, from shared memory); the
// dout rows are read once in total and dweight rows updated in place.
template <typename T>
__global__ void embedding_backward_kernel(int64_t N, int64_t V, int64_t C, int64_t partitions,
                                          const int32_t* __restrict__ tokens,  // [N]
                                          const T* __restrict__ dout,          // [N, C]
                                          float* __restrict__ dweight) {       // [V, C]
  __shared__ int32_t tile[kTokenTile];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t p = blockIdx.y;
  for (int64_t start = 0; start < N; start += kTokenTile) {
    const int64_t count = N - start < kTokenTile ? N - start : kTokenTile;
    __syncthreads();  // the previous tile is no longer read
    // Staging decides ownership once per token: -1 marks tokens of other
    // partitions and invalid ids.
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const int64_t tok = tokens[start + k];
      tile[k] = tok >= 0 && tok < V && tok % partitions == p ? static_cast<int32_t>(tok) : -1;
    }
    __syncthreads();
    if (c >= C) continue;  // no __syncthreads below this point in the iteration
    for (int64_t k = 0; k < count; ++k) {
      const int64_t tok = tile[k];
      if (tok < 0) continue;  // block-uniform: no divergence
      dweight[tok * C + c] += load_as_float(dout[(start + k) * C + c]);
    }
  }
}

}  // namespace

void embedding_forward(const Tensor& tokens, const Tensor& weight, Tensor& out) {
  set_device(weight);
  const int64_t N = tokens.dim(0), V = weight.dim(0), C = weight.dim(1);
  if (N == 0 || C == 0) return;
  dispatch_float(weight, "embedding_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(embedding_forward_kernel<T>, grid_u32(row_blocks(N, 1)), kForwardThreads, 0, kStream,
        N, V, C, tokens.data<int32_t>(), weight.data<T>(), out.data<T>());
  });
  check_launch("embedding_forward_kernel");
}

void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dweight) {
  set_device(dweight);
  const int64_t N = tokens.dim(0), V = dweight.dim(0), C = dweight.dim(1);
  if (N == 0 || C == 0) return;
  const int64_t partitions = embedding_backward_partitions(C);
  const dim3 grid(grid_u32(ceil_div(C, kEmbeddingBackwardThreads)), grid_u32(partitions));
  dispatch_float(dout, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(embedding_backward_kernel<T>, grid, kEmbeddingBackwardThreads, 0, kStream,
        N, V, C, partitions, tokens.data<int32_t>(), dout.data<T>(), dweight.data<float>());
  });
  check_launch("embedding_backward_kernel");
}

}  // namespace rwkv::cuda
