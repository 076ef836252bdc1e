// Logging: one line per event, to stderr, prefixed with the time, the level
// and (once set) the rank, so lines from many ranks can be merged and sorted.
#pragma once

#include <string>

#include "core/error.h"

namespace rwkv {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn" or "error"; anything else is an Error.
LogLevel parse_log_level(const std::string& name);
void set_log_rank(int rank);  // -1: no rank prefix
void log_line(LogLevel level, const std::string& message);

template <typename... Args> void log_debug(const Args&... args) {
  if (log_level() <= LogLevel::Debug) log_line(LogLevel::Debug, str_cat(args...));
}
template <typename... Args> void log_info(const Args&... args) {
  if (log_level() <= LogLevel::Info) log_line(LogLevel::Info, str_cat(args...));
}
template <typename... Args> void log_warn(const Args&... args) {
  if (log_level() <= LogLevel::Warn) log_line(LogLevel::Warn, str_cat(args...));
}
template <typename... Args> void log_error(const Args&... args) { log_line(LogLevel::Error, str_cat(args...)); }

}  // namespace rwkv
