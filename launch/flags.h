// A small command-line parser for the launch tools: --name value,
// --name=value, boolean --name, positionals, and "--" ending the flags.
// Unknown flags and missing values are errors that name the flag and point
// at --help.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rwkv::launch {

class FlagParser {
 public:
  FlagParser(std::string program, std::string usage);
  // A flag taking a value (default_value used when absent; "" = none).
  void add(const std::string& name, const std::string& help, const std::string& default_value = "");
  // A boolean flag: present or not.
  void add_bool(const std::string& name, const std::string& help);
  // Parses argv[1..]; "--help" sets help(). After "--" everything goes to rest().
  void parse(int argc, char** argv);
  void parse(const std::vector<std::string>& args);

  bool help() const { return help_; }
  std::string help_text() const;
  bool given(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  double get_double(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  const std::vector<std::string>& rest() const { return rest_; }

 private:
  struct Spec {
    std::string help, default_value;
    bool boolean = false;
  };
  const Spec& spec(const std::string& name) const;
  std::string program_, usage_;
  std::map<std::string, Spec> specs_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_, rest_;
  bool help_ = false;
};

// Job names become directory names (TensorBoard, runs/<job>): 1-64 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
bool is_valid_job_name(const std::string& name);

// The value of environment variable `name`, or "" when unset.
std::string env_or_empty(const char* name);

}  // namespace rwkv::launch
