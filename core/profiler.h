// Wall time per op name, for the benchmarks' "share of a training step".
// Off by default (one relaxed atomic load per op when off). Host time only:
// on CUDA it measures launch cost, not kernel time.
#pragma once

#include <map>
#include <string>

#include "core/timer.h"

namespace rwkv {

void set_profiling(bool enabled);
bool profiling_enabled();
void profile_add(const char* name, double seconds);
std::map<std::string, double> profile_totals();  // seconds per name since the last reset
void profile_reset();

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(profiling_enabled() ? name : nullptr) {}
  ~ProfileScope() {
    if (name_) profile_add(name_, timer_.seconds());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* name_;
  Timer timer_;
};

}  // namespace rwkv
