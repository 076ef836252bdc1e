// CUDA emulator: running a grid. Blocks run one after another; within a
// block, emulated threads run on fibers (fiber_switch.h) of the calling host
// thread until each finishes or suspends at a barrier:
//
//   __syncthreads     waits until every live thread of the block has arrived,
//   a warp shuffle    waits until every live lane of its warp has arrived,
//                     then each lane reads the value its source lane offered.
//
// A fiber is a worker, not a thread: it runs not-yet-started threads one
// after another and only stays bound to a thread that suspends. So a kernel
// without barriers runs a whole block on one fiber with no switches at all,
// and switches cost only where the kernel synchronises.
//
// RWKV_CUDA_EMULATOR_ORDER=reverse starts and resumes threads from the
// highest index down. Kernels whose result depends on the order threads run
// between two barriers (a missing __syncthreads, a shared slot read before
// its writer ran) give different results in the two orders, so the tests run
// both.
//
// Threads that have returned count as arrived (as on Volta and later for
// __syncthreads after an early return of whole warps). When no thread can
// move and none is left to start, the block is deadlocked (a barrier in
// divergent code): that is reported with where the threads wait instead of
// hanging.
//
// Exchange slots are double-buffered by generation: a lane that leaves
// shuffle n and reaches shuffle n+1 writes the other buffer, so it cannot
// overwrite a value a slower lane has yet to read from shuffle n; it cannot
// reach n+2 before every lane has arrived at n+1, i.e. finished reading n.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_emulator/device_builtins.h"
#include "cuda_emulator/inspect.h"
#include "cuda_emulator/launch.h"
#include "emulator_internal.h"
#include "fiber_switch.h"
#include "stream_order.h"

thread_local uint3 threadIdx{0, 0, 0};
thread_local uint3 blockIdx{0, 0, 0};
thread_local dim3 blockDim{1, 1, 1};
thread_local dim3 gridDim{1, 1, 1};

namespace cuda_emulator {

namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxSharedBytes = 48 * 1024;

enum class ThreadState { NotStarted, Running, AtBlockBarrier, AtWarpBarrier, Ready, Done };

struct Worker {
  FiberContext context;
  char* stack = nullptr;  // mapping: a guard page, then kStackBytes
  int thread = -1;        // the thread it runs now
};

struct WarpExchange {
  unsigned char slot[2][32][16];  // [generation parity][lane][bytes]
  unsigned generation = 0;
  int waiting = 0;
  int live = 0;
};

// One block being run.
struct BlockRun {
  void (*body)(void*) = nullptr;
  void* context = nullptr;
  int threads = 0;
  int live = 0;
  int next_unstarted = 0;
  int at_block_barrier = 0;
  std::vector<ThreadState> state;  // [threads]
  std::vector<Worker*> bound;      // [threads]: the worker holding a suspended thread
  std::vector<WarpExchange> warps;
  FiberContext scheduler;
  Worker* running = nullptr;
  std::exception_ptr failure;
};

thread_local BlockRun* current_run = nullptr;

bool reverse_order() {
  static const bool reverse = [] {
    const char* value = std::getenv("RWKV_CUDA_EMULATOR_ORDER");
    if (value == nullptr || std::strcmp(value, "forward") == 0 || *value == '\0') return false;
    if (std::strcmp(value, "reverse") == 0) return true;
    std::fprintf(stderr, "cuda emulator: RWKV_CUDA_EMULATOR_ORDER=%s is not forward or reverse; using forward\n",
                 value);
    return false;
  }();
  return reverse;
}

// The i-th thread to start or resume, in the configured order.
int nth_thread(const BlockRun& run, int i) { return reverse_order() ? run.threads - 1 - i : i; }
// Workers are reused across blocks and launches (mapping stacks is the cost).
thread_local std::vector<Worker*> idle_workers;

Worker* take_worker() {
  if (!idle_workers.empty()) {
    Worker* w = idle_workers.back();
    idle_workers.pop_back();
    return w;
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mapping = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::runtime_error("cuda emulator: cannot map a fiber stack");
  mprotect(mapping, page, PROT_NONE);  // overflow of a kernel thread's stack faults
  auto* w = new Worker;
  w->stack = static_cast<char*>(mapping) + page;
  return w;
}

void set_thread_index(int linear) {
  threadIdx.x = static_cast<unsigned>(linear) % blockDim.x;
  threadIdx.y = (static_cast<unsigned>(linear) / blockDim.x) % blockDim.y;
  threadIdx.z = static_cast<unsigned>(linear) / (blockDim.x * blockDim.y);
}

void release_block_barrier(BlockRun& run) {
  if (run.at_block_barrier == 0 || run.at_block_barrier != run.live) return;
  for (ThreadState& s : run.state)
    if (s == ThreadState::AtBlockBarrier) s = ThreadState::Ready;
  run.at_block_barrier = 0;
}

void release_warp(BlockRun& run, int warp) {
  WarpExchange& w = run.warps[static_cast<size_t>(warp)];
  if (w.waiting == 0 || w.waiting != w.live) return;
  const int first = warp * 32, last = std::min(run.threads, first + 32);
  for (int i = first; i < last; ++i)
    if (run.state[static_cast<size_t>(i)] == ThreadState::AtWarpBarrier) run.state[static_cast<size_t>(i)] = ThreadState::Ready;
  w.waiting = 0;
  ++w.generation;
}

// A worker's life: start threads until none is left, then hand itself back.
[[noreturn]] void worker_main() {
  for (;;) {
    BlockRun* run = current_run;
    Worker* self = run->running;
    while (run->next_unstarted < run->threads) {
      const int t = nth_thread(*run, run->next_unstarted++);
      self->thread = t;
      run->state[static_cast<size_t>(t)] = ThreadState::Running;
      set_thread_index(t);
      try {
        run->body(run->context);
      } catch (...) {
        if (!run->failure) run->failure = std::current_exception();
      }
      // Only this worker's thread can have run since it was resumed, so
      // current_run and self are still right; the thread may have moved
      // through barriers, which rewrote threadIdx, so nothing else is reused.
      run->state[static_cast<size_t>(t)] = ThreadState::Done;
      --run->live;
      --run->warps[static_cast<size_t>(t / 32)].live;
      release_warp(*run, t / 32);
      release_block_barrier(*run);
    }
    self->thread = -1;
    // Back to the scheduler for good; if it ever resumes this worker again
    // (from the pool, with a fresh run), the loop starts over.
    switch_fiber(self->context, run->scheduler);
  }
}

// Suspends the running thread in `state`; returns when it is resumed.
void suspend(ThreadState state) {
  BlockRun* run = current_run;
  if (run == nullptr || run->running == nullptr) throw std::logic_error("cuda emulator: a barrier or shuffle outside a kernel");
  Worker* self = run->running;
  const int t = self->thread;
  run->state[static_cast<size_t>(t)] = state;
  run->bound[static_cast<size_t>(t)] = self;
  if (state == ThreadState::AtBlockBarrier) {
    ++run->at_block_barrier;
  } else {
    ++run->warps[static_cast<size_t>(t / 32)].waiting;
    release_warp(*run, t / 32);
  }
  release_block_barrier(*run);
  switch_fiber(self->context, run->scheduler);
  // Resumed by the scheduler, which set this thread's indices again.
}

std::string deadlock_message(const BlockRun& run) {
  int at_block = 0, at_warp = 0;
  for (ThreadState s : run.state) {
    at_block += s == ThreadState::AtBlockBarrier;
    at_warp += s == ThreadState::AtWarpBarrier;
  }
  char text[320];
  std::snprintf(text, sizeof text,
                "deadlock in block (%u, %u, %u) of %d threads: %d wait at __syncthreads, %d at a warp "
                "shuffle/__syncwarp whose other lanes wait elsewhere (a barrier in divergent code)",
                blockIdx.x, blockIdx.y, blockIdx.z, run.threads, at_block, at_warp);
  return text;
}

void resume(BlockRun& run, Worker* w, int thread) {
  run.running = w;
  if (thread >= 0) {
    run.state[static_cast<size_t>(thread)] = ThreadState::Running;
    run.bound[static_cast<size_t>(thread)] = nullptr;
    set_thread_index(thread);
  }
  switch_fiber(run.scheduler, w->context);
  run.running = nullptr;
  if (w->thread < 0) idle_workers.push_back(w);  // ran out of threads to start
}

void run_block(BlockRun& run) {
  run.live = run.threads;
  run.next_unstarted = 0;
  run.at_block_barrier = 0;
  std::fill(run.state.begin(), run.state.end(), ThreadState::NotStarted);
  std::fill(run.bound.begin(), run.bound.end(), nullptr);
  for (size_t w = 0; w < run.warps.size(); ++w) {
    run.warps[w].waiting = 0;
    run.warps[w].live = std::min(32, run.threads - static_cast<int>(w) * 32);
  }
  while (run.live > 0) {
    bool progressed = false;
    for (int n = 0; n < run.threads; ++n) {
      const int i = nth_thread(run, n);
      if (run.state[static_cast<size_t>(i)] != ThreadState::Ready) continue;
      resume(run, run.bound[static_cast<size_t>(i)], i);
      progressed = true;
    }
    if (run.next_unstarted < run.threads) {
      Worker* w = take_worker();
      make_fiber(w->context, w->stack, kStackBytes, worker_main);
      resume(run, w, -1);
      progressed = true;
    }
    if (!progressed && run.live > 0) {
      const std::string message = deadlock_message(run);
      // The stuck workers are abandoned to the pool: nothing on their stacks is unwound.
      for (Worker*& w : run.bound)
        if (w != nullptr) {
          w->thread = -1;
          idle_workers.push_back(w);
          w = nullptr;
        }
      throw std::runtime_error("cuda emulator: " + message);
    }
  }
  if (run.failure) std::rethrow_exception(run.failure);
}

}  // namespace

void block_barrier() { suspend(ThreadState::AtBlockBarrier); }

int lane_id() {
  if (current_run == nullptr) throw std::logic_error("cuda emulator: a warp operation outside a kernel");
  if (current_run->running == nullptr) throw std::logic_error("cuda emulator: a warp operation outside a kernel");
  return current_run->running->thread % 32;
}

void warp_exchange(const void* mine, void* out, size_t bytes, int src_lane) {
  BlockRun* run = current_run;
  if (run == nullptr) throw std::logic_error("cuda emulator: a warp operation outside a kernel");
  if (bytes > 16) throw std::logic_error("cuda emulator: shuffles move at most 16 bytes");
  if (run->running == nullptr) throw std::logic_error("cuda emulator: a warp operation outside a kernel");
  const int me = run->running->thread, warp = me / 32, lane = me % 32;
  WarpExchange& w = run->warps[static_cast<size_t>(warp)];
  const unsigned parity = w.generation & 1u;
  if (bytes > 0) std::memcpy(w.slot[parity][lane], mine, bytes);
  suspend(ThreadState::AtWarpBarrier);
  if (src_lane < 0 || bytes == 0) return;
  const int last_lane = std::min(32, run->threads - warp * 32) - 1;
  if (src_lane > last_lane) src_lane = lane;  // a lane that does not exist: own value
  std::memcpy(out, w.slot[parity][src_lane], bytes);
}

bool check_kernel_pointer(const void* ptr, int index, const char* type_name) {
  if (ptr == nullptr) return true;
  const int owner = device_of_range(ptr, 1);
  if (owner == current_device()) return true;
  fail(cudaErrorInvalidValue,
       "kernel argument " + std::to_string(index) + " (" + type_name + ") is " + describe_pointer(ptr) +
           (owner < 0 ? ": kernels can only read device memory"
                      : ": it belongs to another device than the current one (" + std::to_string(current_device()) +
                            ")"));
  return false;
}

void order_kernel(cudaStream_t stream, const char* signature, const void* const* pointers, const bool* writes,
                  size_t count) {
  // "... [with Params = {long int, const float*, float*}; ...]" -> "a kernel(long int, const float*, float*)"
  std::string what = signature;
  const size_t open = what.find("Params = {");
  if (open != std::string::npos) {
    const size_t close = what.find('}', open);
    what = "a kernel(" + what.substr(open + 10, close - open - 10) + ")";
  } else {
    what = "a kernel";
  }
  std::vector<Access> accesses(count);
  for (size_t i = 0; i < count; ++i) accesses[i] = Access{pointers[i], 0, writes[i]};
  order_operation(stream, what.c_str(), accesses.data(), accesses.size());
}

namespace {
std::atomic<uint64_t> launches{0};
}  // namespace

uint64_t kernel_launches() { return launches.load(); }

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, void (*body)(void*), void* context) {
  const long long threads = static_cast<long long>(block.x) * block.y * block.z;
  if (threads < 1 || threads > kMaxThreadsPerBlock || block.z > 64 || grid.x < 1 || grid.y < 1 || grid.z < 1 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || shared_bytes > kMaxSharedBytes) {
    char text[200];
    std::snprintf(text, sizeof text, "invalid launch configuration: grid (%u, %u, %u), block (%u, %u, %u), %zu bytes "
                  "of dynamic shared memory", grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes);
    fail(cudaErrorInvalidConfiguration, text);
    return;
  }
  if (check_stream(stream, "kernel launch") != cudaSuccess) return;
  if (current_run != nullptr) throw std::logic_error("cuda emulator: a kernel launched from inside a kernel");
  ++launches;
  const DeviceAccess access;
  BlockRun run;
  run.body = body;
  run.context = context;
  run.threads = static_cast<int>(threads);
  run.state.resize(static_cast<size_t>(threads));
  run.bound.resize(static_cast<size_t>(threads));
  run.warps.resize(static_cast<size_t>((threads + 31) / 32));
  const uint3 saved_thread = threadIdx, saved_block = blockIdx;
  const dim3 saved_block_dim = blockDim, saved_grid_dim = gridDim;
  blockDim = block;
  gridDim = grid;
  current_run = &run;
  try {
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          blockIdx = uint3{x, y, z};
          run_block(run);
        }
  } catch (...) {
    current_run = nullptr;
    threadIdx = saved_thread;
    blockIdx = saved_block;
    blockDim = saved_block_dim;
    gridDim = saved_grid_dim;
    throw;
  }
  current_run = nullptr;
  threadIdx = saved_thread;
  blockIdx = saved_block;
  blockDim = saved_block_dim;
  gridDim = saved_grid_dim;
}

}  // namespace cuda_emulator
