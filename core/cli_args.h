// A small command-line parser for the tools (rwkv-data's subcommands,
// rwkv-eval): `--name value`, `--name=value`, boolean `--name`, and
// positional arguments. Unknown flags and missing values are errors that
// name the command and list what it accepts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/device.h"

namespace rwkv::cli {

struct Flag {
  std::string name;        // without the leading "--"
  std::string value_name;  // empty: a boolean switch
  std::string help;
};

class Args {
 public:
  // command: what messages name, e.g. "rwkv-data prepare" or "rwkv-eval";
  // argv[first..argc) are parsed.
  Args(std::string command, std::vector<Flag> flags, int argc, char** argv, int first);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::string require(const std::string& name) const;  // throws naming the flag
  std::vector<std::string> get_all(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_; }
  std::string usage() const;

 private:
  const Flag* find(const std::string& name) const;
  std::string command_;
  std::vector<Flag> flags_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

// The tools' --device cpu|cuda (default cpu; cuda: GPU 0): a clear error for
// any other value, and for cuda where no GPU can be used.
Device device_flag(const Args& args);

}  // namespace rwkv::cli
