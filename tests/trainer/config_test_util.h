// Helpers shared by the config tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "trainer/config.h"

namespace rwkv::test {

inline std::string source_dir() { return RWKV_SOURCE_DIR; }

// The smallest valid config: the required keys and nothing else.
inline const char* kMinimalYaml =
    "model:\n"
    "  n_layer: 2\n"
    "  n_embd: 32\n"
    "  vocab_size: 257\n"
    "  ctx_len: 16\n"
    "data:\n"
    "  train: [shard]\n"
    "train:\n"
    "  steps: 10\n";

// Loads YAML text named "test.yaml" and expects an rwkv::Error whose message
// holds every fragment; returns the message.
inline std::string config_error(const std::string& yaml, const std::vector<std::string>& overrides,
                                const std::vector<std::string>& fragments) {
  try {
    trainer::load_config_text(yaml, "test.yaml", overrides);
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << "missing '" << f << "' in:\n" << message;
    return message;
  }
  ADD_FAILURE() << "expected an rwkv::Error for:\n" << yaml;
  return "";
}

// kMinimalYaml with `line` added under `section` (appended as a new section
// when the minimal config has none of that name).
inline std::string minimal_with(const std::string& section, const std::string& line) {
  std::string yaml = kMinimalYaml;
  const std::string header = section + ":\n";
  const size_t at = yaml.find(header);
  if (at == std::string::npos) return yaml + header + "  " + line + "\n";
  return yaml.insert(at + header.size(), "  " + line + "\n");
}

}  // namespace rwkv::test
