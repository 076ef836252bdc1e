// Launch geometry of the CUDA kernels (kernels/cuda/launch_geometry.h): host
// logic, tested in every build, GPU or not.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/cuda/launch_geometry.h"

namespace rwkv::cuda {
namespace {

TEST(LaunchGeometry, CeilDiv) {
  EXPECT_EQ(ceil_div(0, 256), 0);
  EXPECT_EQ(ceil_div(1, 256), 1);
  EXPECT_EQ(ceil_div(256, 256), 1);
  EXPECT_EQ(ceil_div(257, 256), 2);
  EXPECT_EQ(ceil_div(int64_t{1} << 40, 1), int64_t{1} << 40);
}

TEST(LaunchGeometry, ElementwiseBlocksStayWithinLimits) {
  EXPECT_EQ(elementwise_blocks(0), 0);
  EXPECT_EQ(elementwise_blocks(-5), 0);
  EXPECT_EQ(elementwise_blocks(1), 1);
  EXPECT_EQ(elementwise_blocks(256), 1);
  EXPECT_EQ(elementwise_blocks(257), 2);
  // Huge tensors: capped, the grid-stride loop covers the rest.
  for (int64_t n : {int64_t{1} << 31, int64_t{1} << 40, int64_t{1} << 62}) {
    const int64_t blocks = elementwise_blocks(n);
    EXPECT_EQ(blocks, kElementwiseMaxBlocks) << n;
    EXPECT_LE(blocks, kMaxGridX);
  }
}

TEST(LaunchGeometry, RowBlocks) {
  EXPECT_EQ(row_blocks(0, 4), 0);
  EXPECT_EQ(row_blocks(1, 4), 1);
  EXPECT_EQ(row_blocks(9, 4), 3);
  EXPECT_EQ(row_blocks(int64_t{1} << 40, 1), kMaxRowBlocks);
  EXPECT_LE(kMaxRowBlocks, kMaxGridX);
}

TEST(LaunchGeometry, ColumnReducePlanCoversEveryRowOnce) {
  for (int64_t rows : {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{65}, int64_t{8192}, int64_t{16385},
                       int64_t{1} << 20, (int64_t{1} << 31) + 7}) {
    const ColumnReducePlan plan = column_reduce_plan(rows, 768);
    EXPECT_GE(plan.rows_per_chunk, kColumnMinRowsPerChunk) << rows;
    EXPECT_GE(plan.chunks, 1) << rows;
    EXPECT_LE(plan.chunks, kColumnMaxChunks) << rows;
    EXPECT_LE(plan.chunks, kMaxGridY) << rows;
    // chunks * rows_per_chunk covers the rows, and no chunk is empty.
    EXPECT_GE(plan.chunks * plan.rows_per_chunk, rows) << rows;
    EXPECT_LT((plan.chunks - 1) * plan.rows_per_chunk, rows) << rows;
    EXPECT_EQ(plan.channel_blocks, 24) << rows;
    EXPECT_EQ(plan.partial_floats(2, 768), 2 * plan.chunks * 768) << rows;
  }
  const ColumnReducePlan empty = column_reduce_plan(0, 768);
  EXPECT_EQ(empty.chunks, 0);
  EXPECT_EQ(empty.partial_floats(3, 768), 0);
  EXPECT_EQ(column_reduce_plan(100, 33).channel_blocks, 2);
}

TEST(LaunchGeometry, ColumnReducePlanDependsOnlyOnShape) {
  // The determinism contract: a pure function of (rows, channels).
  const ColumnReducePlan a = column_reduce_plan(12345, 1000), b = column_reduce_plan(12345, 1000);
  EXPECT_EQ(a.rows_per_chunk, b.rows_per_chunk);
  EXPECT_EQ(a.chunks, b.chunks);
  static_assert(column_reduce_plan(8192, 768).chunks == 128);
  static_assert(column_reduce_plan(8192, 768).rows_per_chunk == 64);
}

TEST(LaunchGeometry, WkvThreadsSpreadScansOverSms) {
  // 169M model, micro-batch 8: 6144 scans on 108 SMs -> 32-thread blocks (192 blocks).
  EXPECT_EQ(wkv_threads_per_block(8 * 768, 108), 32);
  EXPECT_EQ(wkv_threads_per_block(1, 132), 32);
  EXPECT_EQ(wkv_threads_per_block(132 * 1024, 132), 32);
  EXPECT_EQ(wkv_threads_per_block(132 * 1024 + 1, 132), 64);
  EXPECT_EQ(wkv_threads_per_block(132 * 2048 + 1, 132), 128);
  EXPECT_EQ(wkv_threads_per_block(100, 0), 32);  // unknown SM count: treated as 1
  for (int64_t scans : {int64_t{1}, int64_t{1000}, int64_t{1} << 20, int64_t{1} << 30}) {
    const int threads = wkv_threads_per_block(scans, 132);
    EXPECT_TRUE(threads == 32 || threads == 64 || threads == 128);
    EXPECT_LE(ceil_div(scans, threads), kMaxGridX);
  }
}

TEST(LaunchGeometry, WkvBackwardWorkspace) {
  // f32 outputs double as the scan scratch: only the [2, B, C] partials.
  EXPECT_EQ(wkv_backward_workspace_floats(8, 1024, 768, true), 2 * 8 * 768);
  // bf16 outputs: plus fp32 wkv_t and log D_t for every step.
  EXPECT_EQ(wkv_backward_workspace_floats(8, 1024, 768, false), 2 * 8 * 768 + 2 * 8 * 1024 * 768);
  EXPECT_EQ(wkv_backward_workspace_floats(0, 1024, 768, false), 0);
}

TEST(LaunchGeometry, EmbeddingPartitions) {
  EXPECT_EQ(embedding_backward_partitions(768), 64);   // 6 channel blocks -> capped at 64 partitions
  EXPECT_EQ(embedding_backward_partitions(4096), 16);  // 32 channel blocks -> 512 blocks
  EXPECT_EQ(embedding_backward_partitions(1 << 20), 1);
  EXPECT_EQ(embedding_backward_partitions(1), 64);
  EXPECT_EQ(embedding_backward_partitions(0), 64);
  for (int64_t c : {int64_t{1}, int64_t{100}, int64_t{768}, int64_t{5120}, int64_t{1} << 16}) {
    const int64_t p = embedding_backward_partitions(c);
    EXPECT_GE(p, 1);
    EXPECT_LE(p, 64);
    EXPECT_LE(p, kMaxGridY);
  }
}

TEST(LaunchGeometry, SumSquaresBlocks) {
  EXPECT_EQ(sum_squares_blocks(0), 0);
  EXPECT_EQ(sum_squares_blocks(1), 1);
  EXPECT_EQ(sum_squares_blocks(4096), 1);
  EXPECT_EQ(sum_squares_blocks(4097), 2);
  EXPECT_EQ(sum_squares_blocks(int64_t{1} << 40), kSumSquaresMaxBlocks);
  // The final pass is one block of kSumSquaresThreads threads looping over the partials.
  EXPECT_GE(kSumSquaresMaxBlocks, kSumSquaresThreads);
}

}  // namespace
}  // namespace rwkv::cuda
