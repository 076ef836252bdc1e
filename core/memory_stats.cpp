#include "core/memory_stats.h"

#include <cstdio>
#include <cstring>

namespace rwkv {

HostMemory host_memory() {
  HostMemory m;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return m;  // not Linux: report zeros rather than fail a training run
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    long long kb = 0;
    if (std::sscanf(line, "VmRSS: %lld kB", &kb) == 1) m.resident_bytes = kb * 1024;
    if (std::sscanf(line, "VmHWM: %lld kB", &kb) == 1) m.peak_resident_bytes = kb * 1024;
  }
  std::fclose(f);
  return m;
}

}  // namespace rwkv
