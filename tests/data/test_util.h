// Helpers shared by the data tests: paths to shared test data, a scratch
// directory that cleans itself up, small file writers, and running the CLI.
#pragma once

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/unit/test_util.h"

namespace rwkv::data::testing {

// ../shared/data/NAME; the RWKV_SHARED_DATA_DIR environment variable overrides
// the compiled-in location. Fails the test with a clear message when missing.
inline std::string shared_data(const std::string& name) {
  const char* env = std::getenv("RWKV_SHARED_DATA_DIR");
  std::string dir = env != nullptr ? env : RWKV_SHARED_DATA_DIR;
  std::string path = dir + "/" + name;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "shared test data missing: " << path
                  << "\n  ---> HINT: the data tests need ../shared/data beside the repository (CI has it), "
                     "or set RWKV_SHARED_DATA_DIR to a folder holding " << name;
    throw std::runtime_error("missing shared test data " + path);
  }
  return path;
}

inline std::string repo_path(const std::string& relative) { return std::string(RWKV_REPO_DIR) + "/" + relative; }

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "rwkv-data-test-XXXXXX").string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buffer.data();
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_zstd(const std::string& path, const std::string& content, int level = 3) {
  std::string compressed(ZSTD_compressBound(content.size()), '\0');
  size_t n = ZSTD_compress(compressed.data(), compressed.size(), content.data(), content.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error("ZSTD_compress failed");
  compressed.resize(n);
  write_text(path, compressed);
}

using CommandResult = rwkv::test::CommandResult;

// Runs the rwkv-data binary with `arguments` (already shell-quoted as needed).
inline CommandResult run_cli(const std::string& arguments) {
  return rwkv::test::run_command(std::string("'") + RWKV_DATA_CLI + "' " + arguments);
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace rwkv::data::testing
