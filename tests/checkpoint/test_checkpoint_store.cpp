// Checkpoints on disk: commit protocol, verified loading, fallback past a
// damaged checkpoint, retention, and a save killed midway.
#include "checkpoint/checkpoint_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace rwkv::checkpoint {
namespace {

namespace fs = std::filesystem;

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("rwkv_ckpt_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  SaveRequest request(int64_t step, int64_t size = 64) {
    SaveRequest r;
    r.step = step;
    r.tokens = step * 100;
    r.config_yaml = "model: {}\n";
    r.config_digest = "0123456789abcdef";
    r.tensors.push_back({"blocks.0.att.key.weight", "param", test::random_tensor({size, 4}, DType::F32, static_cast<uint64_t>(step)), {}, {}});
    r.tensors.push_back({"blocks.0.att.key.weight", "adam_m", test::random_tensor({size, 4}, DType::F32, static_cast<uint64_t>(step) + 1000), {}, {}});
    r.tensors.push_back({"blocks.0.att.time_mix_k", "param", test::random_tensor({1, 1, 4}, DType::F32, static_cast<uint64_t>(step) + 2000), {}, {}});
    return r;
  }

  fs::path root_;
};

TEST_F(CheckpointStoreTest, SaveCommitsAndLoadReturnsTheSameBits) {
  CheckpointStore store(root_.string(), 0, 0);
  const SaveRequest r = request(10);
  const std::string dir = store.save(r);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "COMMITTED"));
  EXPECT_FALSE(fs::exists(dir + ".partial"));
  EXPECT_EQ(store.committed_steps(), (std::vector<int64_t>{10}));
  LoadedCheckpoint loaded(dir);
  EXPECT_EQ(loaded.manifest().step, 10);
  EXPECT_EQ(loaded.manifest().tokens, 1000);
  for (const CheckpointTensor& t : r.tensors) {
    Tensor out = Tensor::empty(t.tensor.shape(), t.tensor.dtype());
    loaded.read_into(t.name, t.kind, out);
    EXPECT_EQ(out.to_vector<float>(), t.tensor.to_vector<float>()) << t.kind << " " << t.name;
  }
  Tensor wrong = Tensor::empty({3, 4}, DType::F32);
  test::expect_error([&] { loaded.read_into("blocks.0.att.key.weight", "param", wrong); }, {"F32[64, 4]", "expects F32[3, 4]"});
  test::expect_error([&] { loaded.read_into("missing", "param", wrong); }, {"no param 'missing'"});
}

TEST_F(CheckpointStoreTest, AlteredOrTruncatedShardIsFoundAndLatestFallsBack) {
  CheckpointStore store(root_.string(), 0, 0);
  store.save(request(10));
  const std::string newest = store.save(request(20));
  const std::string shard = (fs::path(newest) / "rank00000.safetensors").string();
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x42');  // one altered byte in the data
  }
  test::expect_error([&] { LoadedCheckpoint c(newest); }, {shard, "hash", "altered"});
  std::optional<LoadedCheckpoint> latest = store.load_latest();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->manifest().step, 10);  // fell back past the damaged one
  fs::resize_file(shard, fs::file_size(shard) - 10);
  test::expect_error([&] { LoadedCheckpoint c(newest); }, {shard, "truncated"});
  fs::remove(shard);
  test::expect_error([&] { LoadedCheckpoint c(newest); }, {shard, "missing"});
}

TEST_F(CheckpointStoreTest, UncommittedDirectoriesAreNeverLoaded) {
  CheckpointStore store(root_.string(), 0, 0);
  store.save(request(10));
  const std::string dir = store.save(request(20));
  fs::remove(fs::path(dir) / "COMMITTED");
  test::expect_error([&] { LoadedCheckpoint c(dir); }, {dir, "not a committed checkpoint"});
  EXPECT_EQ(store.committed_steps(), (std::vector<int64_t>{10}));
  EXPECT_EQ(store.load_latest()->manifest().step, 10);
}

TEST_F(CheckpointStoreTest, RetentionKeepsTheLastKAndEveryNth) {
  CheckpointStore store(root_.string(), 2, 30);
  for (int64_t step : {10, 20, 30, 40, 50, 60, 70}) store.save(request(step));
  EXPECT_EQ(store.committed_steps(), (std::vector<int64_t>{30, 60, 70}));
}

TEST_F(CheckpointStoreTest, AsyncSaveSnapshotsTheTensors) {
  CheckpointStore store(root_.string(), 0, 0);
  SaveRequest r = request(5);
  const std::vector<float> before = r.tensors[0].tensor.to_vector<float>();
  Tensor live = r.tensors[0].tensor;
  store.save_async(r);
  live.zero_();  // training goes on and changes the parameters
  store.wait();
  LoadedCheckpoint loaded(store.path_for(5));
  Tensor out = Tensor::empty(live.shape(), DType::F32);
  loaded.read_into("blocks.0.att.key.weight", "param", out);
  EXPECT_EQ(out.to_vector<float>(), before);
}

// A process killed in the middle of a save leaves the earlier checkpoint
// intact and the new one uncommitted; the next save cleans up.
TEST_F(CheckpointStoreTest, KilledSaveNeverDamagesAnEarlierCheckpoint) {
  {
    CheckpointStore store(root_.string(), 0, 0);
    store.save(request(10));
  }
  const std::string earlier_hash = file_xxh3((fs::path(root_) / "step_00000010" / "rank00000.safetensors").string());
  for (int delay_us : {0, 2000, 20000}) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      CheckpointStore store(root_.string(), 0, 0);
      for (int64_t step = 20;; step += 10) store.save(request(step, 1 << 16));  // ~1 MB shards, until killed
    }
    usleep(static_cast<useconds_t>(delay_us));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    CheckpointStore store(root_.string(), 0, 0);
    // Every committed checkpoint verifies; the earlier one is untouched.
    for (int64_t step : store.committed_steps()) EXPECT_NO_THROW(LoadedCheckpoint c(store.path_for(step))) << step;
    EXPECT_EQ(file_xxh3((fs::path(root_) / "step_00000010" / "rank00000.safetensors").string()), earlier_hash);
    ASSERT_TRUE(store.load_latest().has_value());
  }
  CheckpointStore store(root_.string(), 0, 0);
  store.save(request(1000000));
  for (const fs::directory_entry& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
    EXPECT_TRUE(fs::exists(e.path() / "COMMITTED")) << e.path();
  }
}

TEST(Manifest, RejectsMalformedManifests) {
  Manifest m;
  m.files.push_back({"rank00000.safetensors", 0, 10, "00"});
  m.tensors.push_back({"w", "param", DType::F32, {4, 4}, {{"rank00000.safetensors", "param/w", {0, 0}, {4, 4}, ""}}});
  const Manifest back = Manifest::from_json(m.to_json(), "m.json");
  EXPECT_EQ(back.tensors[0].slices[0].shape, (Shape{4, 4}));
  Manifest outside = m;
  outside.tensors[0].slices[0].offset = {2, 0};
  test::expect_error([&] { Manifest::from_json(outside.to_json(), "m.json"); }, {"m.json", "'w'", "outside"});
  Manifest unknown_file = m;
  unknown_file.tensors[0].slices[0].file = "other.safetensors";
  test::expect_error([&] { Manifest::from_json(unknown_file.to_json(), "m.json"); }, {"other.safetensors", "does not list"});
  test::expect_error([&] { Manifest::from_json("{\"format\": \"x\"}", "m.json"); }, {"m.json", "format"});
  test::expect_error([&] { Manifest::from_json("{", "m.json"); }, {"m.json", "not valid JSON"});
}

}  // namespace
}  // namespace rwkv::checkpoint
