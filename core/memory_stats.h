// Host memory of this process, as the kernel accounts it (/proc/self/status):
// what the step log and the benchmarks report next to the analytic figure.
#pragma once

#include <cstdint>

namespace rwkv {

struct HostMemory {
  int64_t resident_bytes = 0;       // VmRSS: now
  int64_t peak_resident_bytes = 0;  // VmHWM: the high-water mark
};

HostMemory host_memory();

}  // namespace rwkv
