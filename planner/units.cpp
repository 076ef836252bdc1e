#include "planner/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace rwkv::planner {

namespace {

// Splits "600GB/s" into 600 and "GB/s" (spaces allowed between them).
std::pair<double, std::string> split_unit(const std::string& text, const std::string& flag, const char* example) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  RWKV_CHECK(end != begin && std::isfinite(value), flag, " expects a number with an optional unit, got '", text,
             "'\n  ---> HINT: e.g. ", flag, " ", example);
  std::string unit(end);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(0, 1);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  return {value, unit};
}

}  // namespace

double parse_number(const std::string& text, const std::string& flag) {
  const auto [value, unit] = split_unit(text, flag, "2");
  RWKV_CHECK(unit.empty(), flag, " expects a plain number, got '", text, "'\n  ---> HINT: leave out the unit '", unit, "'");
  return value;
}

int64_t parse_integer(const std::string& text, const std::string& flag) {
  const double value = parse_number(text, flag);
  RWKV_CHECK(value == std::floor(value) && std::abs(value) < 9e15, flag, " expects a whole number, got '", text,
             "'\n  ---> HINT: e.g. ", flag, " 8");
  return static_cast<int64_t>(value);
}

double parse_bytes(const std::string& text, const std::string& flag) {
  const auto [value, unit] = split_unit(text, flag, "80GiB");
  double scale = 0;
  if (unit.empty() || unit == "GiB" || unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "MiB" || unit == "M") scale = 1024.0 * 1024;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "TiB" || unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "TB") scale = 1e12;
  RWKV_CHECK(scale > 0, flag, ": unknown unit '", unit, "' in '", text,
             "'\n  ---> HINT: use GiB, GB, MiB, MB, TiB or TB, e.g. ", flag, " 80GiB");
  return value * scale;
}

double parse_bandwidth(const std::string& text, const std::string& flag) {
  const auto [value, unit] = split_unit(text, flag, "600GB/s");
  // Upper-case B is bytes, lower-case b is bits (IB and Ethernet are quoted in Gb/s).
  double scale = 0;
  if (unit.empty() || unit == "GB/s") scale = 1e9;
  else if (unit == "Gb/s" || unit == "Gbit/s" || unit == "Gbps") scale = 1e9 / 8;
  else if (unit == "MB/s") scale = 1e6;
  else if (unit == "Mb/s") scale = 1e6 / 8;
  else if (unit == "TB/s") scale = 1e12;
  else if (unit == "Tb/s") scale = 1e12 / 8;
  RWKV_CHECK(scale > 0, flag, ": unknown unit '", unit, "' in '", text,
             "'\n  ---> HINT: use GB/s (bytes) or Gb/s (bits), e.g. ", flag, " 600GB/s or ", flag, " 200Gb/s");
  return value * scale;
}

std::string format_gib(double bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  return s;
}

std::string format_seconds(double seconds) {
  char s[32];
  if (seconds >= 1.0) std::snprintf(s, sizeof s, "%.3f s", seconds);
  else std::snprintf(s, sizeof s, "%.1f ms", seconds * 1e3);
  return s;
}

std::string format_count(double value) {
  char s[32];
  if (value >= 1e6) std::snprintf(s, sizeof s, "%.2fM", value / 1e6);
  else if (value >= 1e3) std::snprintf(s, sizeof s, "%.1fK", value / 1e3);
  else std::snprintf(s, sizeof s, "%.1f", value);
  return s;
}

}  // namespace rwkv::planner
