#include "core/cli_args.h"

#include <exception>
#include <string>

#include "core/error.h"

namespace rwkv::cli {

Args::Args(std::string command, std::vector<Flag> flags, int argc, char** argv, int first)
    : command_(std::move(command)), flags_(std::move(flags)) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const Flag* flag = find(name);
    RWKV_CHECK(flag != nullptr, command_, ": unknown flag --", name, "\n  ---> HINT: ", usage());
    if (flag->value_name.empty()) {
      RWKV_CHECK(!inline_value, command_, ": --", name, " takes no value");
      value.assign(1, '1');  // (not `= "1"`: GCC 12 warns falsely with -Wrestrict)
    } else if (!inline_value) {
      RWKV_CHECK(i + 1 < argc, command_, ": --", name, " needs a value (", flag->value_name, ")");
      value = argv[++i];
    }
    values_[name].push_back(value);
  }
}

const Flag* Args::find(const std::string& name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::require(const std::string& name) const {
  RWKV_CHECK(has(name), command_, ": --", name, " is required\n  ---> HINT: ", usage());
  return get(name);
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

namespace {
// The whole of text as a number by parse (std::stoll or std::stod); false
// for an empty text, trailing characters or a value out of range.
template <typename T, typename Parse>
bool parse_whole(const std::string& text, Parse parse, T& value) {
  size_t used = 0;
  try {
    value = parse(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return !text.empty() && used == text.size();
}
}  // namespace

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name);
  int64_t value = 0;
  const bool ok = parse_whole(text, [](const std::string& t, size_t* used) { return std::stoll(t, used); }, value);
  RWKV_CHECK(ok, command_, ": --", name, " expects an integer, got '", text, "'");
  return value;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name);
  double value = 0;
  const bool ok = parse_whole(text, [](const std::string& t, size_t* used) { return std::stod(t, used); }, value);
  RWKV_CHECK(ok, command_, ": --", name, " expects a number, got '", text, "'");
  return value;
}

std::string Args::usage() const {
  if (flags_.empty()) return "`" + command_ + "` takes no flags";
  std::string out = "flags of `" + command_ + "`:";
  for (const Flag& flag : flags_) {
    out += "\n      --" + flag.name + (flag.value_name.empty() ? "" : " " + flag.value_name);
    out += std::string(flag.name.size() + flag.value_name.size() < 26 ? 26 - flag.name.size() - flag.value_name.size() : 1, ' ');
    out += flag.help;
  }
  return out;
}

Device device_flag(const Args& args) {
  const std::string name = args.get("device", "cpu");
  RWKV_CHECK(name == "cpu" || name == "cuda", "--device expects cpu or cuda, got '", name, "'");
  RWKV_CHECK(name == "cpu" || cuda_available(), "--device cuda, but ", cuda_unavailable_reason(),
             "\n  ---> HINT: run on a GPU node, or use --device cpu");
  return name == "cuda" ? Device::cuda(0) : Device::cpu();
}

}  // namespace rwkv::cli
