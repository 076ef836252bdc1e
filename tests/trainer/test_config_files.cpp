// The shipped configs: every file in configs/ loads and round-trips, the six
// RWKV-4 Pile shapes are the released ones, and configs/README.md documents
// every key the parser knows (and no key it does not).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "config_test_util.h"

namespace rwkv::trainer {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> config_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(test::source_dir() + "/configs")) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".yaml" || ext == ".yml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ConfigFiles, EveryConfigLoadsAndRoundTrips) {
  const std::vector<fs::path> files = config_files();
  std::set<std::string> names;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    names.insert(file.filename().string());
    TrainConfig config;
    ASSERT_NO_THROW(config = load_config(file.string()));
    const std::string dump = config_to_yaml(config);
    const TrainConfig back = load_config_text(dump, file.string() + " (dump)");
    EXPECT_TRUE(back == config) << dump;
    EXPECT_EQ(config_digest(back), config_digest(config));
    EXPECT_GE(total_steps(config), 1);
  }
  for (const char* name : {"tiny-test.yaml", "tiny.yaml", "rwkv4-169m.yaml", "rwkv4-430m.yaml", "rwkv4-1b5.yaml",
                           "rwkv4-3b.yaml", "rwkv4-7b.yaml", "rwkv4-14b.yaml"}) {
    EXPECT_EQ(names.count(name), 1u) << name << " missing from configs/";
  }
}

TEST(ConfigFiles, DigestsOfTheShippedConfigsDiffer) {
  std::map<uint64_t, std::string> seen;
  for (const fs::path& file : config_files()) {
    const uint64_t digest = config_digest(load_config(file.string()));
    EXPECT_EQ(seen.count(digest), 0u) << file << " has the digest of " << seen[digest];
    seen[digest] = file.string();
  }
}

TEST(ConfigFiles, PileShapesAreTheReleasedModels) {
  struct Shape {
    const char* file;
    int64_t n_layer, n_embd;
    double lr_init;
  };
  for (const Shape& s : {Shape{"rwkv4-169m.yaml", 12, 768, 6e-4}, Shape{"rwkv4-430m.yaml", 24, 1024, 4e-4},
                         Shape{"rwkv4-1b5.yaml", 24, 2048, 3e-4}, Shape{"rwkv4-3b.yaml", 32, 2560, 1.5e-4},
                         Shape{"rwkv4-7b.yaml", 32, 4096, 1.5e-4}, Shape{"rwkv4-14b.yaml", 40, 5120, 1e-4}}) {
    SCOPED_TRACE(s.file);
    const TrainConfig c = load_config(test::source_dir() + "/configs/" + s.file);
    EXPECT_EQ(c.model.n_layer, s.n_layer);
    EXPECT_EQ(c.model.n_embd, s.n_embd);
    EXPECT_EQ(c.model.vocab_size, 50277);
    EXPECT_EQ(c.model.ctx_len, 1024);
    EXPECT_EQ(c.model.dim_ffn, 4 * s.n_embd);
    EXPECT_EQ(c.train.lr_init, s.lr_init);
    EXPECT_EQ(c.train.beta1, 0.9);
    EXPECT_EQ(c.train.beta2, 0.99);
    EXPECT_EQ(c.train.adam_eps, 1e-8);
    EXPECT_EQ(c.train.grad_clip, 1.0);
    EXPECT_EQ(c.data.magic_prime, 324331313);  // RWKV-LM's Pile prime at ctx_len 1024
    EXPECT_EQ(c.train.tokens, 324331313LL * 1024);
  }
}

// configs/README.md documents each key in a table row that starts with
// | `section.key` |, under its "## Keys" heading.
std::set<std::string> readme_keys() {
  const std::string readme = read_text(test::source_dir() + "/configs/README.md");
  std::set<std::string> keys;
  const std::regex row(R"(^\| `([a-z0-9_.]+)` \|)");
  std::istringstream lines(readme);
  bool in_keys = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("## ", 0) == 0) in_keys = line == "## Keys";
    std::smatch match;
    if (in_keys && std::regex_search(line, match, row)) keys.insert(match[1]);
  }
  EXPECT_FALSE(keys.empty()) << "no '## Keys' tables found in configs/README.md";
  return keys;
}

TEST(ConfigFiles, ReadmeDocumentsEveryKey) {
  const std::set<std::string> documented = readme_keys();
  const std::vector<std::string> known = config_keys();
  for (const std::string& key : known) {
    EXPECT_EQ(documented.count(key), 1u) << "configs/README.md has no row | `" << key << "` |";
  }
  const std::set<std::string> known_set(known.begin(), known.end());
  for (const std::string& key : documented) {
    EXPECT_EQ(known_set.count(key), 1u) << "configs/README.md documents `" << key << "`, which the parser does not know";
  }
}

}  // namespace
}  // namespace rwkv::trainer
