#include "device_memory.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emulator_internal.h"

namespace cuda_emulator {

namespace {

struct Allocation {
  size_t bytes = 0;   // what was asked for
  size_t usable = 0;  // bytes rounded up to pages; the guard page follows
  int device = 0;
};

// Guarded by its mutex; the fault handler reads it without locking (it only
// looks, and a wrong answer there only makes a message less precise).
std::mutex registry_mutex;
std::map<uintptr_t, Allocation> allocations;  // by start address
std::vector<size_t> bytes_in_use;             // by device
bool memory_open = false;

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

bool protection_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("RWKV_CUDA_EMULATOR_PROTECT");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

void set_protection(uintptr_t start, const Allocation& a, bool open) {
  if (!protection_enabled()) return;
  if (mprotect(reinterpret_cast<void*>(start), a.usable, open ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) {
    report("mprotect failed on emulated device memory: " + std::string(std::strerror(errno)));
    std::abort();
  }
}

// The allocation whose mapping (guard page included) holds addr, if any.
const std::pair<const uintptr_t, Allocation>* find_mapping(uintptr_t addr) {
  auto it = allocations.upper_bound(addr);
  if (it == allocations.begin()) return nullptr;
  --it;
  if (addr >= it->first + it->second.usable + page_size()) return nullptr;
  return &*it;
}

thread_local bool in_device_work = false;

void on_fault(int, siginfo_t* info, void*) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  const auto* hit = find_mapping(addr);
  char message[512];
  if (hit != nullptr && addr >= hit->first + hit->second.bytes) {
    std::snprintf(message, sizeof message,
                  "cuda emulator: out-of-bounds access at %p, %zu bytes past the end of a %zu-byte device "
                  "allocation on device %d (%s)\n",
                  info->si_addr, static_cast<size_t>(addr - hit->first - hit->second.bytes), hit->second.bytes,
                  hit->second.device, in_device_work ? "in emulated device work" : "from host code");
  } else if (hit != nullptr) {
    std::snprintf(message, sizeof message,
                  "cuda emulator: host code dereferenced device memory at %p (%zu bytes into a %zu-byte "
                  "allocation on device %d); on a GPU this faults too: copy it to the host first\n",
                  info->si_addr, static_cast<size_t>(addr - hit->first), hit->second.bytes, hit->second.device);
  } else {
    std::snprintf(message, sizeof message, "cuda emulator: segmentation fault at %p (not emulated device memory)\n",
                  info->si_addr);
  }
  const ssize_t ignored = write(STDERR_FILENO, message, std::strlen(message));
  (void)ignored;
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
}

}  // namespace

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, nullptr);
  });
}

size_t device_memory_budget() {
  static const size_t budget = [] {
    const char* value = std::getenv("RWKV_CUDA_EMULATOR_MEMORY_MIB");
    const long long mib = value != nullptr ? std::atoll(value) : 8192;
    return static_cast<size_t>(mib > 0 ? mib : 8192) << 20;
  }();
  return budget;
}

void* allocate_device_memory(int device, size_t bytes) {
  install_fault_handler();
  const size_t page = page_size();
  Allocation a;
  a.bytes = bytes;
  a.usable = (bytes + page - 1) / page * page;
  a.device = device;
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (bytes_in_use.size() <= static_cast<size_t>(device)) bytes_in_use.resize(static_cast<size_t>(device) + 1, 0);
  if (bytes_in_use[static_cast<size_t>(device)] + a.usable > device_memory_budget()) return nullptr;
  void* mapping = mmap(nullptr, a.usable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return nullptr;
  std::memset(mapping, 0xff, a.usable);  // never-written device memory reads as NaN
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapping);
  if (mprotect(static_cast<char*>(mapping) + a.usable, page, PROT_NONE) != 0) {
    munmap(mapping, a.usable + page);
    return nullptr;
  }
  if (!memory_open) set_protection(start, a, false);
  allocations.emplace(start, a);
  bytes_in_use[static_cast<size_t>(device)] += a.usable;
  return mapping;
}

bool free_device_memory(void* ptr, size_t* bytes, int* device) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == allocations.end()) return false;
  *bytes = it->second.bytes;
  *device = it->second.device;
  bytes_in_use[static_cast<size_t>(it->second.device)] -= it->second.usable;
  munmap(ptr, it->second.usable + page_size());
  allocations.erase(it);
  return true;
}

size_t device_bytes_in_use(int device) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return static_cast<size_t>(device) < bytes_in_use.size() ? bytes_in_use[static_cast<size_t>(device)] : 0;
}

void open_device_memory() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  for (const auto& [start, a] : allocations) set_protection(start, a, true);
  memory_open = true;
  in_device_work = true;
}

void close_device_memory() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  for (const auto& [start, a] : allocations) set_protection(start, a, false);
  memory_open = false;
  in_device_work = false;
}

int device_of_range(const void* ptr, size_t bytes) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(registry_mutex);
  const auto* hit = find_mapping(addr);
  if (hit == nullptr || addr + bytes > hit->first + hit->second.bytes || addr < hit->first) return -1;
  return hit->second.device;
}

std::string describe_pointer(const void* ptr) {
  char text[160];
  if (ptr == nullptr) return "a null pointer";
  const uintptr_t addr = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(registry_mutex);
  const auto* hit = find_mapping(addr);
  if (hit == nullptr) {
    std::snprintf(text, sizeof text, "%p (not emulated device memory: a host pointer?)", ptr);
  } else {
    std::snprintf(text, sizeof text, "%p (%zu bytes into a %zu-byte allocation on device %d)", ptr,
                  static_cast<size_t>(addr - hit->first), hit->second.bytes, hit->second.device);
  }
  return text;
}

}  // namespace cuda_emulator
