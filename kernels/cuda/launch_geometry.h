// Launch geometry and workspace sizes of the CUDA kernels. Plain C++ with no
// CUDA headers, so the CPU-only build compiles it and tests it
// (tests/cuda/test_launch_geometry.cpp).
//
// Two rules run through this file:
//   - grids never exceed the hardware limits, whatever N is: kernels whose
//     grid could grow with the data loop grid-stride over the rest;
//   - every reduction's split (how many partial sums, over which elements)
//     depends only on the tensor shapes, never on the GPU model or its SM
//     count, so a reduction gives bit-identical results on any GPU and in any
//     run. Only the purely parallel kernels (no sums across threads) may size
//     their grids from the SM count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace rwkv::cuda {

// gridDim.x may reach 2^31 - 1 (compute capability >= 3.0); y and z 65535.
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridY = 65535;

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- element-wise kernels (grid-stride loops) --------------------------------
// 256 threads, at most 4096 blocks: ~4 waves of resident blocks on a 132-SM
// H100 (8 blocks of 256 per SM), enough to saturate memory bandwidth; larger
// tensors are covered by the grid-stride loop rather than by more blocks.
constexpr int kElementwiseThreads = 256;
constexpr int64_t kElementwiseMaxBlocks = 4096;

constexpr int64_t elementwise_blocks(int64_t n, int64_t threads = kElementwiseThreads,
                                     int64_t max_blocks = kElementwiseMaxBlocks) {
  return n <= 0 ? 0 : std::min(ceil_div(n, threads), max_blocks);
}

// ---- row kernels (a warp or a block per row, grid-stride over rows) ----------
// Rows beyond 65536 blocks are taken by the grid-stride loop; a block per row
// is already more than enough parallelism there.
constexpr int64_t kMaxRowBlocks = 65536;

constexpr int64_t row_blocks(int64_t rows, int64_t rows_per_block) {
  return rows <= 0 ? 0 : std::min(ceil_div(rows, rows_per_block), kMaxRowBlocks);
}

// LayerNorm runs one warp per row, 4 warps (128 threads) per block.
constexpr int kLayerNormWarpsPerBlock = 4;
// Cross-entropy runs one block of 256 threads per row (V = 50277: ~200 logits per thread).
constexpr int kCrossEntropyThreads = 256;

// ---- column reductions (sums over rows, one result per channel) --------------
// dweight/dbias of LayerNorm and dmix of token shift sum over all N = B*T rows.
// Blocks of 32 channels x 8 row-lanes; grid (channel blocks, chunks). Each
// chunk of consecutive rows writes one partial per channel, and a second
// kernel adds the chunks in index order. Chunks hold at least 64 rows (so the
// partial buffer stays small) and there are at most 256 of them (a fixed
// bound, so the final pass is short).
constexpr int kColumnBlockChannels = 32;
constexpr int kColumnBlockRowLanes = 8;
constexpr int64_t kColumnMinRowsPerChunk = 64;
constexpr int64_t kColumnMaxChunks = 256;

struct ColumnReducePlan {
  int64_t rows_per_chunk = 0;
  int64_t chunks = 0;          // grid.y (<= 256)
  int64_t channel_blocks = 0;  // grid.x
  // floats of partial sums for `outputs` results per channel: [outputs, chunks, channels]
  int64_t partial_floats(int64_t outputs, int64_t channels) const { return outputs * chunks * channels; }
};

constexpr ColumnReducePlan column_reduce_plan(int64_t rows, int64_t channels) {
  ColumnReducePlan plan;
  if (rows <= 0 || channels <= 0) return plan;
  plan.rows_per_chunk = std::max(kColumnMinRowsPerChunk, ceil_div(rows, kColumnMaxChunks));
  plan.chunks = ceil_div(rows, plan.rows_per_chunk);
  plan.channel_blocks = ceil_div(channels, kColumnBlockChannels);
  return plan;
}

// ---- WKV scans -----------------------------------------------------------------
// One thread per (batch, channel) scan. Scans are few (B*C, e.g. 8*768 = 6144)
// and long, so the aim is to spread them over as many SMs as possible: 32-thread
// blocks while a GPU-wide 32 blocks/SM of them (the per-SM block limit of
// sm_80/sm_90) can hold every scan, larger blocks only beyond that. The scans
// are independent, so this choice never changes the results.
constexpr int wkv_threads_per_block(int64_t scans, int64_t sm_count) {
  const int64_t sms = sm_count > 0 ? sm_count : 1;
  if (scans <= sms * 32 * 32) return 32;
  if (scans <= sms * 32 * 64) return 64;
  return 128;
}

// fp32 workspace of wkv4_backward, in floats:
//   [2, B, C]     per-scan partial dL/dw and dL/du (summed over B in a second kernel)
//   [2, B, T, C]  wkv_t and log-denominator per step, only when gk/gv cannot
//                 hold them (bf16 outputs); with f32 outputs they are the scratch.
constexpr int64_t wkv_backward_workspace_floats(int64_t B, int64_t T, int64_t C, bool outputs_are_f32) {
  return 2 * B * C + (outputs_are_f32 ? 0 : 2 * B * T * C);
}

// ---- embedding backward ---------------------------------------------------------
// dweight[tok[n], c] += dout[n, c] without atomics: the vocabulary is split in
// P partitions (token id mod P); block (channel block, p) scans all N tokens in
// order and adds the rows of its partition, so each dweight row is summed by
// one thread per channel, in token order: deterministic and independent of P.
// P grows until there are about 512 blocks (at most 64 partitions).
constexpr int kEmbeddingBackwardThreads = 128;
constexpr int64_t embedding_backward_partitions(int64_t channels) {
  const int64_t channel_blocks = std::max<int64_t>(1, ceil_div(channels, kEmbeddingBackwardThreads));
  return std::clamp<int64_t>(ceil_div(512, channel_blocks), 1, 64);
}

// ---- sum of squares ----------------------------------------------------------------
// First pass: at most 1024 blocks of 256 threads, each accumulating a
// grid-stride slice in double; at least 4096 elements per block so small
// tensors use few blocks. Second pass: one block adds the block sums in a fixed
// tree. The split depends on n only.
constexpr int kSumSquaresThreads = 256;
constexpr int64_t kSumSquaresMaxBlocks = 1024;
constexpr int64_t sum_squares_blocks(int64_t n) {
  return n <= 0 ? 0 : std::min(ceil_div(n, int64_t{kSumSquaresThreads} * 16), kSumSquaresMaxBlocks);
}

}  // namespace rwkv::cuda
