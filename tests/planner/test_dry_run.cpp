// rwkv-train --dry-run: the shape-only declaration equals the real one, the
// manifest check catches gaps and overlaps, and the 14B model on
// dp 2 x tp 4 x pp 8 = 64 ranks produces a valid manifest.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "core/file_io.h"
#include "trainer/config.h"
#include "trainer/dry_run.h"

namespace rwkv::trainer {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

// The miniature declaration against declare_rwkv4_parameters itself, for
// every partition of shapes small enough to allocate: names, order, local and
// global shapes, offsets and the replication flag.
TEST(DryRun, ShapesEqualTheAllocatingDeclaration) {
  for (const auto& [L, C, F, V] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {4, 24, 96, 257}, {3, 48, 200, 100}, {5, 12, 48, 7}, {2, 64, 256, 64}}) {
    const Rwkv4Shape shape{L, C, V, F};
    for (int64_t tp : {1, 2, 4}) {
      if (C % tp || F % tp) continue;
      for (int64_t pp : {int64_t{1}, int64_t{2}, L}) {
        for (int64_t pad : {1, 64}) {
          for (int64_t stage = 0; stage < pp; ++stage) {
            for (int64_t r = 0; r < tp; ++r) {
              Rwkv4Partition part = Rwkv4Partition::whole(shape);
              part.tp_size = tp, part.tp_rank = r;
              std::tie(part.layer_begin, part.layer_end) = stage_layers(L, pp, stage);
              part.padded_vocab = padded_vocab_size(V, tp, pad);
              const ParameterStore real = declare_rwkv4_parameters(shape, DType::F32, Device::cpu(), part);
              const std::vector<ParameterShape> dry = declare_rwkv4_shapes(shape, part);
              ASSERT_EQ(dry.size(), real.entries().size());
              for (size_t i = 0; i < dry.size(); ++i) {
                const NamedTensor& e = real.entries()[i];
                SCOPED_TRACE(e.name + " tp " + std::to_string(tp) + " rank " + std::to_string(r) + " pp " +
                             std::to_string(pp) + " pad " + std::to_string(pad));
                EXPECT_EQ(dry[i].name, e.name);
                EXPECT_EQ(dry[i].shape, e.value.shape());
                EXPECT_EQ(dry[i].global_shape, e.global());
                EXPECT_EQ(dry[i].global_offset, e.offset());
                EXPECT_EQ(dry[i].tp_replicated, e.tp_replicated);
              }
            }
          }
        }
      }
    }
  }
}

// A manifest of one tensor cut in two row slices: correct, then broken in each way.
TEST(DryRun, CoverageCheckCatchesGapsOverlapsAndStrays) {
  std::vector<ParameterShape> whole = {{"w", {4, 3}, {4, 3}, {0, 0}, false}};
  checkpoint::Manifest m;
  m.files = {{"a", 0, 0, ""}, {"b", 1, 0, ""}};
  for (const char* kind : {"param", "adam_m", "adam_v"}) {
    checkpoint::ManifestTensor t;
    t.name = "w", t.kind = kind, t.shape = {4, 3};
    checkpoint::ManifestSlice top, bottom;
    top.file = "a", top.key = "k", top.offset = {0, 0}, top.shape = {2, 3};
    bottom.file = "b", bottom.key = "k", bottom.offset = {2, 0}, bottom.shape = {2, 3};
    t.slices = {top, bottom};
    m.tensors.push_back(t);
  }
  EXPECT_NO_THROW(validate_manifest_coverage(m, whole));
  auto error_with = [&](const std::function<void(checkpoint::Manifest&)>& damage) {
    checkpoint::Manifest broken = m;
    damage(broken);
    try {
      validate_manifest_coverage(broken, whole);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_with([](auto& b) { b.tensors[0].slices.pop_back(); }).find("cover 6 of its 12"), std::string::npos);
  EXPECT_NE(error_with([](auto& b) { b.tensors[1].slices[1].offset = {1, 0}; }).find("overlap"), std::string::npos);
  EXPECT_NE(error_with([](auto& b) { b.tensors[2].slices[1].offset = {3, 0}; }).find("lies outside"), std::string::npos);
  EXPECT_NE(error_with([](auto& b) { b.tensors.pop_back(); }).find("3 kinds"), std::string::npos);
  EXPECT_NE(error_with([](auto& b) { b.tensors[2].kind = "adam_m"; }).find("listed twice"), std::string::npos);
  EXPECT_NE(error_with([](auto& b) { b.tensors[0].shape = {4, 4}; }).find("global shape"), std::string::npos);
}

// The 14B config on 64 ranks: every rank's parameters, the manifest written
// into a temporary directory, read back and validated.
TEST(DryRun, FourteenBillionOnSixtyFourRanks) {
  TrainConfig config = load_config(std::string(RWKV_SOURCE_DIR) + "/configs/rwkv4-14b.yaml",
                                   {"parallel.dp=2", "parallel.tp=4", "parallel.pp=8"});
  const fs::path dir = temp_dir("rwkv_dry_run_14b");
  const DryRunResult r = dry_run(config, dir.string());
  ASSERT_EQ(r.ranks.size(), 64u);
  // One replica's ranks hold every parameter once, plus the tp-replicated
  // vectors on each of the 4 tp ranks and 3 padding rows of emb and head (V 50277 -> 50280).
  int64_t replica = 0, replicated_extra = 0;
  for (const DryRunRank& k : r.ranks) {
    EXPECT_EQ(k.part.tp_size, 4);
    EXPECT_EQ(k.part.layer_end - k.part.layer_begin, 5);
    if (k.dp_rank == 0) replica += k.parameters;
  }
  // per block 9 C replicated vectors (ln1, ln2, 5 time_mix... : 4C + 5C), ln0 and ln_out 4C in all
  replicated_extra = 3 * (40 * 9 * 5120 + 4 * 5120);
  EXPECT_EQ(replica, parameter_count(config.model) + replicated_extra + 2 * 3 * 5120);
  EXPECT_EQ(r.manifest.files.size(), 64u);
  EXPECT_EQ(r.manifest.tensors.size(), 3u * (40 * 18 + 6));
  // The file on disk parses and covers the model (dry_run validated it; check again from the file).
  const checkpoint::Manifest read = checkpoint::Manifest::from_json(rwkv::read_file(r.manifest_path), r.manifest_path);
  const Rwkv4Shape shape{40, 5120, 50277, 20480};
  EXPECT_NO_THROW(validate_manifest_coverage(read, declare_rwkv4_shapes(shape, Rwkv4Partition::whole(shape))));
  EXPECT_EQ(read.layout.dp, 2);
  EXPECT_EQ(read.layout.tp, 4);
  EXPECT_EQ(read.layout.pp, 8);
  const checkpoint::ManifestTensor* head = read.find("head.weight", "param");
  ASSERT_NE(head, nullptr);
  ASSERT_EQ(head->slices.size(), 4u);
  EXPECT_EQ(head->slices[3].shape, (Shape{50277 - 3 * 12570, 5120}));  // the padding rows are not saved
  const std::string text = format_dry_run(config, r);
  EXPECT_NE(text.find("64 files; valid"), std::string::npos) << text;
  fs::remove_all(dir);
}

TEST(DryRun, ImpossibleLayoutIsAClearError) {
  // tp 3 does not divide C = 5120: the config check (or the dry run) says so.
  const fs::path dir = temp_dir("rwkv_dry_run_bad");
  try {
    const TrainConfig config = load_config(std::string(RWKV_SOURCE_DIR) + "/configs/rwkv4-14b.yaml", {"parallel.tp=3"});
    dry_run(config, dir.string());
    FAIL() << "tp 3 does not divide 5120";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.tp"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "manifest.json"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv::trainer
