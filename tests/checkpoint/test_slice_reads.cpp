// Reading parts of a sharded checkpoint: the box arithmetic against a naive
// copy, a rank reading (and verifying) only the slices its partition
// overlaps, and the errors of a damaged slice or a deleted manifest.
#include <filesystem>
#include <fstream>
#include <random>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/slice_region.h"
#include "test_util.h"

namespace rwkv::checkpoint {
namespace {

namespace fs = std::filesystem;

// Global position of row-major index i in a box.
std::vector<int64_t> position(const Box& b, int64_t i) {
  std::vector<int64_t> pos(b.shape.size());
  for (size_t d = b.shape.size(); d-- > 0;) {
    pos[d] = b.offset[d] + i % b.shape[d];
    i /= b.shape[d];
  }
  return pos;
}

bool inside(const Box& b, const std::vector<int64_t>& pos) {
  for (size_t d = 0; d < pos.size(); ++d)
    if (pos[d] < b.offset[d] || pos[d] >= b.offset[d] + b.shape[d]) return false;
  return true;
}

int64_t linear(const Box& b, const std::vector<int64_t>& pos) {
  int64_t i = 0;
  for (size_t d = 0; d < pos.size(); ++d) i = i * b.shape[d] + pos[d] - b.offset[d];
  return i;
}

TEST(SliceRegion, CopyOverlapMatchesElementByElementCopy) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t rank = 1 + trial % 3;
    Box src, dst;
    for (size_t d = 0; d < rank; ++d) {
      src.offset.push_back(rng() % 5);
      src.shape.push_back(1 + rng() % 5);
      dst.offset.push_back(rng() % 5);
      dst.shape.push_back(1 + rng() % 5);
    }
    std::vector<int32_t> s(static_cast<size_t>(shape_numel(src.shape))), got(static_cast<size_t>(shape_numel(dst.shape)), -1);
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int32_t>(i);
    std::vector<int32_t> want = got;
    int64_t overlap = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
      const std::vector<int64_t> pos = position(src, i);
      if (!inside(dst, pos)) continue;
      want[static_cast<size_t>(linear(dst, pos))] = s[static_cast<size_t>(i)];
      ++overlap;
    }
    const int64_t copied = copy_overlap(reinterpret_cast<const uint8_t*>(s.data()), src,
                                        reinterpret_cast<uint8_t*>(got.data()), dst, sizeof(int32_t));
    ASSERT_EQ(copied, overlap) << "trial " << trial;
    ASSERT_EQ(overlap_numel(src, dst), overlap) << "trial " << trial;
    ASSERT_EQ(got, want) << "trial " << trial;
  }
}

class SliceReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("rwkv_slices_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A [6, 8] weight written as two ranks' column halves (tensor parallel) and
  // a [1, 1, 8] vector by rank 0 only, as a 2-rank run writes them.
  std::string save_two_rank_checkpoint(CheckpointStore& store) {
    for (int rank : {0, 1}) {
      SaveRequest r;
      r.rank = rank;
      r.world = 2;
      r.step = 3;
      r.layout = {1, 2, 1, false};
      r.tensors.push_back({"w", "param", whole_.slice_rows(0, 6).clone(), {}, {}});
      r.tensors.back().tensor = columns(rank);
      r.tensors.back().global_shape = {6, 8};
      r.tensors.back().offset = {0, 4 * rank};
      if (rank == 0) r.tensors.push_back({"v", "param", vector_, {}, {}});
      store.write_rank_shard(r);
      if (rank == 1) store.write_manifest(r);
    }
    return store.commit_partial(3);
  }
  Tensor columns(int rank) {
    Tensor t = Tensor::empty({6, 4}, DType::F32);
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 4; ++j) t.data<float>()[i * 4 + j] = whole_.data<float>()[i * 8 + 4 * rank + j];
    return t;
  }

  fs::path root_;
  Tensor whole_ = test::random_tensor({6, 8}, DType::F32, 11);
  Tensor vector_ = test::random_tensor({1, 1, 8}, DType::F32, 12);
};

TEST_F(SliceReadTest, ARankReadsOnlyTheSlicesItsPartitionOverlaps) {
  CheckpointStore store(root_.string(), 0, 0);
  const std::string dir = save_two_rank_checkpoint(store);
  // Rows 2..4 of columns 4..7 (a box inside rank 1's slice): only that slice is read.
  LoadedCheckpoint c(dir, Verify::WhenRead);
  Tensor box = Tensor::empty({3, 4}, DType::F32);
  c.read_region("w", "param", {2, 4}, box);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(box.data<float>()[i * 4 + j], whole_.data<float>()[(2 + i) * 8 + 4 + j]) << i << "," << j;
  EXPECT_EQ(c.bytes_read(), 6u * 4u * sizeof(float));
  // A box across both slices, with rows past the global tensor (vocabulary padding): those are zero.
  Tensor padded = Tensor::empty({8, 8}, DType::F32);
  c.read_region("w", "param", {0, 0}, padded);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 8; ++j)
      EXPECT_EQ(padded.data<float>()[i * 8 + j], i < 6 ? whole_.data<float>()[i * 8 + j] : 0.0f) << i << "," << j;
  EXPECT_EQ(c.bytes_read(), 2u * 6u * 4u * sizeof(float));  // each slice counted once
  Tensor whole = Tensor::empty({6, 8}, DType::F32);
  c.read_into("w", "param", whole);
  EXPECT_EQ(whole.to_vector<float>(), whole_.to_vector<float>());
  Tensor v = Tensor::empty({1, 1, 8}, DType::F32);
  c.read_into("v", "param", v);
  EXPECT_EQ(v.to_vector<float>(), vector_.to_vector<float>());
}

TEST_F(SliceReadTest, DamagedSliceIsFoundByTheRankThatReadsIt) {
  CheckpointStore store(root_.string(), 0, 0);
  const std::string dir = save_two_rank_checkpoint(store);
  const std::string shard = (fs::path(dir) / "rank00001.safetensors").string();
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x42');  // one altered byte in rank 1's slice
  }
  LoadedCheckpoint c(dir, Verify::WhenRead);  // sizes are fine: nothing found yet
  Tensor left = Tensor::empty({6, 4}, DType::F32);
  EXPECT_NO_THROW(c.read_region("w", "param", {0, 0}, left));  // rank 0's slice is intact
  Tensor right = Tensor::empty({6, 4}, DType::F32);
  test::expect_error([&] { c.read_region("w", "param", {0, 4}, right); }, {shard, "slice 'param/w'", "altered"});
  test::expect_error([&] { LoadedCheckpoint all(dir, Verify::AllFiles); }, {shard, "hash", "altered"});
}

TEST_F(SliceReadTest, DeletedManifestOrShardGivesItsOwnError) {
  CheckpointStore store(root_.string(), 0, 0);
  const std::string dir = save_two_rank_checkpoint(store);
  fs::remove(fs::path(dir) / "rank00000.safetensors");
  test::expect_error([&] { LoadedCheckpoint c(dir, Verify::WhenRead); }, {"rank00000.safetensors", "missing"});
  fs::remove(fs::path(dir) / kManifestName);
  test::expect_error([&] { LoadedCheckpoint c(dir, Verify::WhenRead); }, {"manifest.json", "missing", "deleted"});
  EXPECT_FALSE(store.load_latest().has_value());
}

}  // namespace
}  // namespace rwkv::checkpoint
