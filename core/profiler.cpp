#include "core/profiler.h"

#include <atomic>
#include <mutex>

namespace rwkv {

namespace {
std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::map<std::string, double>& totals() {
  static std::map<std::string, double> t;
  return t;
}
}  // namespace

void set_profiling(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }
bool profiling_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void profile_add(const char* name, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  totals()[name] += seconds;
}

std::map<std::string, double> profile_totals() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return totals();
}

void profile_reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  totals().clear();
}

}  // namespace rwkv
