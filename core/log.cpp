#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace rwkv {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::atomic<int> g_rank{-1};
std::mutex g_mutex;

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO";
    case LogLevel::Warn: return "WARN";
    case LogLevel::Error: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "warn") return LogLevel::Warn;
  if (name == "error") return LogLevel::Error;
  RWKV_FAIL("unknown log level '", name, "', expected one of debug, info, warn, error");
}

void set_log_rank(int rank) { g_rank = rank; }

void log_line(LogLevel level, const std::string& message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  int millis = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm_utc{};
  gmtime_r(&secs, &tm_utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::lock_guard<std::mutex> lock(g_mutex);
  int rank = g_rank.load();
  if (rank >= 0) {
    std::fprintf(stderr, "%s.%03dZ %-5s [rank %d] %s\n", stamp, millis, level_tag(level), rank, message.c_str());
  } else {
    std::fprintf(stderr, "%s.%03dZ %-5s %s\n", stamp, millis, level_tag(level), message.c_str());
  }
  std::fflush(stderr);
}

}  // namespace rwkv
