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

TEST(ZeroPartition, ChunksAreAlignedAndCoverEveryParameterOnce) {
  ParameterStore s = small_store();
  FlatLayout layout(s);
  for (int dp : {1, 2, 3, 4, 5})
    for (int64_t align : {1, 4, 64})
      for (int64_t bucket : {1, 5, 8, 24, 1 << 20}) {
        SCOPED_TRACE("dp " + std::to_string(dp) + " align " + std::to_string(align) + " bucket " + std::to_string(bucket));
        ZeroPartition z(layout, dp, align, bucket);
        int64_t chunks = 0;
        for (int b = 0; b < z.buckets(); ++b) {
          EXPECT_EQ(z.chunk_numel(b) % align, 0);
          if (b + 1 < z.buckets()) {
            EXPECT_EQ(z.bucket_begin(b + 1), z.bucket_begin(b) + z.bucket_numel(b));
          }
          EXPECT_EQ(z.shard_offset(b), chunks);
          chunks += z.chunk_numel(b);
        }
        EXPECT_EQ(z.shard_numel(), chunks);
        EXPECT_EQ(z.bucket_begin(z.buckets() - 1) + z.bucket_numel(z.buckets() - 1), z.padded_numel());
        EXPECT_GE(z.padded_numel(), 23);
        EXPECT_LT(z.padded_numel() - 23, int64_t{dp} * align);  // at most one aligned block per rank of padding
        std::vector<int> covered(23, 0);
        for (int r = 0; r < dp; ++r) {
          int64_t next_shard_offset = 0;
          for (const ShardPiece& p : z.pieces(r)) {
            // The piece lies in rank r's chunk of some bucket, at the matching shard position.
            int b = z.buckets() - 1;
            while (b > 0 && z.bucket_begin(b) > p.flat_offset) --b;
            const int64_t chunk_begin = z.bucket_begin(b) + r * z.chunk_numel(b);
            EXPECT_GE(p.flat_offset, chunk_begin);
            EXPECT_LE(p.flat_offset + p.length, chunk_begin + z.chunk_numel(b));
            EXPECT_EQ(p.shard_offset, z.shard_offset(b) + p.flat_offset - chunk_begin);
            EXPECT_GE(p.shard_offset, next_shard_offset);  // shard order, no overlap
            next_shard_offset = p.shard_offset + p.length;
            EXPECT_EQ(layout.offset(p.tensor) + p.tensor_offset, p.flat_offset);
            for (int64_t i = 0; i < p.length; ++i) ++covered[static_cast<size_t>(p.flat_offset + i)];
          }
          EXPECT_LE(next_shard_offset, z.shard_numel());
        }
        for (int c : covered) EXPECT_EQ(c, 1);
      }
  auto piece = [](int tensor, int64_t tensor_offset, int64_t flat_offset, int64_t length, int64_t shard_offset) {
    ShardPiece p;
    p.tensor = tensor, p.tensor_offset = tensor_offset, p.flat_offset = flat_offset, p.length = length;
    p.shard_offset = shard_offset;
    return p;
  };
  // One bucket (dp=2, align=4): S = ceil(23/8)*4 = 12; rank 0 owns all of a,
  // rank 1 b, c and 1 element of padding.
  ZeroPartition whole(layout, 2, 4, 1 << 20);
  EXPECT_EQ(whole.buckets(), 1);
  EXPECT_EQ(whole.shard_numel(), 12);
  EXPECT_EQ(whole.pieces(0), (std::vector<ShardPiece>{piece(0, 0, 0, 12, 0)}));
  EXPECT_EQ(whole.pieces(1), (std::vector<ShardPiece>{piece(1, 0, 12, 5, 0), piece(2, 0, 17, 6, 5)}));
  // Buckets of 8 (a [0,12) b [12,17) c [17,23)): chunks of 4; the last
  // bucket [16, 24) holds b's last element, c and one element of padding.
  ZeroPartition buckets(layout, 2, 4, 8);
  EXPECT_EQ(buckets.buckets(), 3);
  EXPECT_EQ(buckets.shard_numel(), 12);
  EXPECT_EQ(buckets.pieces(0), (std::vector<ShardPiece>{piece(0, 0, 0, 4, 0), piece(0, 8, 8, 4, 4),
                                                       piece(1, 4, 16, 1, 8), piece(2, 0, 17, 3, 9)}));
  EXPECT_EQ(buckets.pieces(1), (std::vector<ShardPiece>{piece(0, 4, 4, 4, 0), piece(1, 0, 12, 4, 4),
                                                       piece(2, 3, 20, 3, 8)}));
  // A shorter last bucket: 23 elements in buckets of 16 -> [0,16) and [16,24).
  ZeroPartition short_last(layout, 2, 4, 16);
  EXPECT_EQ(short_last.buckets(), 2);
  EXPECT_EQ(short_last.chunk_numel(0), 8);
  EXPECT_EQ(short_last.chunk_numel(1), 4);
  EXPECT_EQ(short_last.shard_numel(), 12);
}

}  // namespace
}  // namespace rwkv::parallel
