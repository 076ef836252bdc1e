// Internal to the config loader: the table of every key (its section, name,
// expected type and how to read and write it) and the context that turns a
// key path into "file:line:col" for messages. Parsing, dumping, the key list
// and the "did you mean" suggestions all come from this one table, so a key
// cannot be readable but undocumented, or dumped but not parsed.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainer/config.h"

namespace rwkv::trainer::detail {

// Where the config came from and where each key sits in it.
class ConfigContext {
 public:
  explicit ConfigContext(std::string origin) : origin_(std::move(origin)) {}

  const std::string& origin() const { return origin_; }
  // Records that `path` ("train.steps", "train") is at `where`.
  void set_location(const std::string& path, const std::string& where) { where_[path] = where; }
  void forget(const std::string& path) { where_.erase(path); }
  // "file:line:col" for a key read from the file, "file (--set k=v)" for an
  // override; for an absent key, its section's location, else the file.
  std::string location(const std::string& path) const;

  // Throws rwkv::Error: "<location>: <path>: <problem>\n  ---> HINT: <hint>".
  [[noreturn]] void fail(const std::string& path, const std::string& problem, const std::string& hint) const;

 private:
  std::string origin_;
  std::map<std::string, std::string> where_;
};

// "file:LINE:COL" for a node (yaml-cpp counts from 0, editors from 1).
std::string mark_location(const std::string& origin, const YAML::Node& node);
// How a value reads in a message: 'four', a list, a mapping, an empty value.
std::string describe_value(const YAML::Node& node);

struct Field {
  std::string section;   // "" for a top-level key
  std::string key;
  std::string expected;  // "a positive integer", "one of cpu, cuda", ...
  bool required = false;
  std::function<void(const YAML::Node&, TrainConfig&, const ConfigContext&)> read;
  // The value as YAML text; nullopt leaves the key out of the dump (an unset
  // train.steps or train.tokens, which has no YAML spelling of its own).
  std::function<std::optional<std::string>(const TrainConfig&)> dump;

  std::string path() const { return section.empty() ? key : section + "." + key; }
};

// Every key, in canonical order: top-level keys first, then section by section.
const std::vector<Field>& config_fields();
// The section names, in canonical order.
const std::vector<std::string>& config_sections();

// The candidate closest to `word` by edit distance, or "" when none is close
// enough to be a plausible typo.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// The checks that involve more than one key (steps xor tokens, warmup within
// the run, tensor-parallel divisibility, ...); config_check.cpp.
void check_config(const TrainConfig& config, const ConfigContext& ctx);

// Number text in a form every YAML reader takes as a float (always a '.' and a
// signed exponent when there is one) and that reads back to the same double.
std::string format_double(double value);

}  // namespace rwkv::trainer::detail
