#include "launch/flags.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace rwkv::launch {

FlagParser::FlagParser(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {}

void FlagParser::add(const std::string& name, const std::string& help, const std::string& default_value) {
  specs_[name] = {help, default_value, false};
  order_.push_back(name);
}

void FlagParser::add_bool(const std::string& name, const std::string& help) {
  specs_[name] = {help, "", true};
  order_.push_back(name);
}

const FlagParser::Spec& FlagParser::spec(const std::string& name) const {
  auto it = specs_.find(name);
  RWKV_CHECK(it != specs_.end(), program_, ": unknown flag --", name, "\n  ---> HINT: ", program_,
             " --help lists the flags");
  return it->second;
}

void FlagParser::parse(int argc, char** argv) { parse(std::vector<std::string>(argv + 1, argv + argc)); }

void FlagParser::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      rest_.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      return;
    }
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.size() < 3 || a.rfind("--", 0) != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec& s = spec(name);
    if (s.boolean) {
      RWKV_CHECK(!inline_value || value == "true" || value == "false", program_, ": --", name,
                 " is a switch and takes no value (got '", value, "')\n  ---> HINT: write --", name, " alone");
      values_[name] = inline_value ? value : "true";
      continue;
    }
    if (!inline_value) {
      RWKV_CHECK(i + 1 < args.size(), program_, ": --", name, " needs a value\n  ---> HINT: --", name, " <",
                 s.help.empty() ? "value" : "value: " + s.help, ">");
      value = args[++i];
    }
    values_[name] = value;
  }
}

std::string FlagParser::get(const std::string& name) const {
  const Spec& s = spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? s.default_value : it->second;
}

bool FlagParser::get_bool(const std::string& name) const {
  spec(name);
  auto it = values_.find(name);
  return it != values_.end() && it->second == "true";
}

double FlagParser::get_double(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  RWKV_CHECK(!v.empty() && end != nullptr && *end == '\0', program_, ": --", name, " expects a number, got '", v,
             "'\n  ---> HINT: e.g. --", name, " 5");
  return d;
}

int64_t FlagParser::get_int(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  RWKV_CHECK(!v.empty() && end != nullptr && *end == '\0', program_, ": --", name, " expects an integer, got '", v,
             "'\n  ---> HINT: e.g. --", name, " 3");
  return n;
}

std::string FlagParser::help_text() const {
  std::ostringstream out;
  out << usage_ << "\n\nflags:\n";
  for (const std::string& name : order_) {
    const Spec& s = specs_.at(name);
    std::string left = "  --" + name + (s.boolean ? "" : " <v>");
    if (left.size() < 28) left.resize(28, ' ');
    out << left << " " << s.help;
    if (!s.default_value.empty()) out << " (default " << s.default_value << ")";
    out << "\n";
  }
  return out.str();
}

bool is_valid_job_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace rwkv::launch
