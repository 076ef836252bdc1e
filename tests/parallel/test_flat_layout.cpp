// Flat layout, ZeRO-1 partition and the byte formulas: pure logic, no MPI.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "parallel/comm_volume.h"
#include "parallel/data_parallel.h"
#include "parallel/flat_layout.h"

namespace rwkv::parallel {
namespace {

ParameterStore small_store() {
  ParameterStore s;
  s.add("a", {3, 4}, DType::F32, true, 1.0f);      // flat [0, 12)
  s.add("b", {5}, DType::F32, false, 2.0f);        // flat [12, 17)
  s.add("c", {2, 1, 3}, DType::F32, false, 3.0f);  // flat [17, 23)
  float v = 0.0f;
  for (NamedTensor& e : s.entries())
    for (int64_t i = 0; i < e.value.numel(); ++i) e.value.data<float>()[i] = v++;  // element = flat index
  return s;
}

TEST(CommVolume, BalancedChunksCoverTheRangeAndDifferByAtMostOne) {
  for (int64_t n : {0, 1, 7, 10, 64, 1001})
    for (int parts = 1; parts <= 9; ++parts) {
      int64_t next = 0;
      for (int i = 0; i < parts; ++i) {
        ChunkRange c = balanced_chunk(n, parts, i);
        EXPECT_EQ(c.begin, next);
        EXPECT_TRUE(c.length == n / parts || c.length == n / parts + 1);
        next = c.begin + c.length;
      }
      EXPECT_EQ(next, n);
    }
  EXPECT_THROW(balanced_chunk(10, 3, 3), Error);
}

TEST(CommVolume, FormulasMatchTheRingVolumes) {
  // Divisible sizes: all-reduce = 2 (n-1)/n N e, reduce-scatter / all-gather = (n-1) M e.
  for (int n : {1, 2, 4, 8})
    for (int r = 0; r < n; ++r) EXPECT_EQ(all_reduce_bytes_sent(1024, 4, n, r), uint64_t(2 * (n - 1) * 1024 * 4 / n));
  // 10 elements over 3 ranks: chunks 4, 3, 3; rank r sends 10 - len_r + 2 len_r.
  EXPECT_EQ(all_reduce_bytes_sent(10, 8, 3, 0), uint64_t((10 + 4) * 8));
  EXPECT_EQ(all_reduce_bytes_sent(10, 8, 3, 2), uint64_t((10 + 3) * 8));
  EXPECT_EQ(reduce_scatter_bytes_sent(5, 4, 3), 40u);
  EXPECT_EQ(all_gather_bytes_sent(5, 2, 4), 30u);
  EXPECT_EQ(broadcast_bytes_sent(5, 4, 3, 1, 1), 40u);
  EXPECT_EQ(broadcast_bytes_sent(5, 4, 3, 0, 1), 0u);
  EXPECT_EQ(all_reduce_bytes_sent(100, 4, 1, 0), 0u);
}

TEST(FlatLayout, PiecesMapFlatRangesToTensors) {
  ParameterStore s = small_store();
  FlatLayout layout(s);
  EXPECT_EQ(layout.numel(), 23);
  EXPECT_EQ(layout.tensors(), 3);
  EXPECT_EQ(layout.offset(2), 17);
  EXPECT_EQ(layout.pieces(10, 20), (std::vector<FlatPiece>{{0, 10, 10, 2}, {1, 0, 12, 5}, {2, 0, 17, 3}}));
  EXPECT_EQ(layout.pieces(12, 17), (std::vector<FlatPiece>{{1, 0, 12, 5}}));
  EXPECT_EQ(layout.pieces(20, 40), (std::vector<FlatPiece>{{2, 3, 20, 3}}));  // clipped at the end
  EXPECT_TRUE(layout.pieces(23, 30).empty());
  EXPECT_TRUE(layout.pieces(5, 5).empty());
}

TEST(FlatLayout, PackAndUnpackRoundTripWithZeroPadding) {
  ParameterStore s = small_store();
  FlatLayout layout(s);
  Tensor buf = Tensor::empty({10}, DType::F32);
  pack(s, layout, 18, 28, buf);  // 5 real elements, then padding
  EXPECT_EQ(buf.to_vector<float>(), (std::vector<float>{18, 19, 20, 21, 22, 0, 0, 0, 0, 0}));
  ParameterStore t = s.zeros_like();
  for (int64_t b = 0; b < 23; b += 7) {
    Tensor part = Tensor::empty({7}, DType::F32);
    pack(s, layout, b, b + 7, part);
    unpack(part, layout, b, b + 7, t);
  }
  for (size_t i = 0; i < s.entries().size(); ++i)
    EXPECT_EQ(s.entries()[i].value.to_vector<float>(), t.entries()[i].value.to_vector<float>());
}

TEST(FlatLayout, MixedDtypesAreRejected) {
  ParameterStore s;
  s.add("a", {2}, DType::F32, false, 1.0f);
  s.add("b", {2}, DType::F64, false, 1.0f);
  try {
    FlatLayout layout(s);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'b' is f64[2] cpu but 'a' is f32[2] cpu"), std::string::npos)
        << e.what();
  }
}

TEST(ZeroPartition, ShardsAreAlignedEqualAndCoverEveryParameterOnce) {
  ParameterStore s = small_store();
  FlatLayout layout(s);
  for (int dp : {1, 2, 3, 4, 5})
    for (int64_t align : {1, 4, 64}) {
      ZeroPartition z(layout, dp, align);
      EXPECT_EQ(z.shard_numel() % align, 0);
      EXPECT_GE(z.padded_numel(), 23);
      EXPECT_LT(z.padded_numel() - 23, int64_t{dp} * align);  // at most one aligned block per rank of padding
      std::vector<int> covered(23, 0);
      for (int r = 0; r < dp; ++r)
        for (const FlatPiece& p : z.pieces(r)) {
          EXPECT_GE(p.flat_offset, z.shard_begin(r));
          EXPECT_LE(p.flat_offset + p.length, z.shard_begin(r) + z.shard_numel());
          EXPECT_EQ(layout.offset(p.tensor) + p.tensor_offset, p.flat_offset);
          for (int64_t i = 0; i < p.length; ++i) ++covered[static_cast<size_t>(p.flat_offset + i)];
        }
      for (int c : covered) EXPECT_EQ(c, 1);
    }
  // dp=2, align=4: S = ceil(23/8)*4 = 12; rank 0 owns all of a, rank 1 b, c and 1 element of padding.
  ZeroPartition z(layout, 2, 4);
  EXPECT_EQ(z.shard_numel(), 12);
  EXPECT_EQ(z.pieces(0), (std::vector<FlatPiece>{{0, 0, 0, 12}}));
  EXPECT_EQ(z.pieces(1), (std::vector<FlatPiece>{{1, 0, 12, 5}, {2, 0, 17, 6}}));
}

}  // namespace
}  // namespace rwkv::parallel
