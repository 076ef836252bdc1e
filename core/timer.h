// Wall-clock timing on the host. (GPU work is timed with CUDA events in the
// CUDA backend; a host timer around asynchronous GPU calls measures nothing.)
#pragma once

#include <chrono>

namespace rwkv {

class Timer {
 public:
  Timer() : start_(Clock::now()) {}
  void reset() { start_ = Clock::now(); }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double millis() const { return seconds() * 1e3; }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

}  // namespace rwkv
