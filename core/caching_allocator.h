// A caching allocator for device memory, in the spirit of PyTorch's
// CUDACachingAllocator but small: freed blocks stay cached and serve later
// requests, so a training step after the first one makes no cudaMalloc or
// cudaFree call (both are slow, and cudaFree synchronises the whole device).
//
// The policy here is pure host logic. The memory itself comes from a
// BackingAllocator: cudaMalloc/cudaFree on a GPU (core/cuda_allocator.cpp), a
// recording fake in the unit tests (tests/unit/test_caching_allocator.cpp), so
// every rule below is tested on the CPU.
//
// Policy
//   - Sizes: a request is rounded up to a multiple of 512 B (kMinBlock; 0 B
//     counts as 1). Rounded sizes up to 1 MiB (kSmallRequest) are "small" and
//     come from 2 MiB segments (kSmallSegment) shared by many blocks; larger
//     ones are "large": below 10 MiB from a 20 MiB segment, else from a
//     segment of the request rounded up to 2 MiB. Small and large blocks live
//     in separate pools, so small blocks never fragment the large segments.
//   - Reuse: best fit, the smallest cached block of the same pool and stream
//     that is big enough (ties: lowest address).
//   - Splitting: the rest of a block that is bigger than the request becomes
//     a free block of its own when it is at least 512 B (small pool) or more
//     than 1 MiB (large pool). A block handed out is therefore at most 1 MiB
//     (large) or 0 B (small) bigger than the rounded request: that bound on
//     waste is what the tests check. Freed neighbours within a segment merge
//     again.
//   - Streams: every segment belongs to the stream it was first allocated for
//     and its blocks serve only that stream. A block freed on the host while
//     kernels of its stream still use it can then be handed out at once: the
//     next user's work is queued after those kernels. Memory used by another
//     stream must be ordered back onto the owning stream before it is freed
//     (the NCCL communicator does: its end() makes stream 0 wait for it).
//   - Out of memory: when the backing allocator fails, every fully cached
//     segment is released and the allocation is retried once; if it fails
//     again an rwkv::Error names the request, the bytes in use and cached,
//     and a hint.
//   - Without caching (options.caching = false, RWKV_CUDA_CACHING_ALLOCATOR=0
//     on a GPU), every request goes straight to the backing allocator with its
//     exact size and every free straight back: a debugging mode (tools such as
//     compute-sanitizer then see each buffer's true bounds).
//   - Thread safety: one mutex around everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace rwkv {

// The memory behind the cache.
class BackingAllocator {
 public:
  virtual ~BackingAllocator() = default;
  // At least `bytes` of memory aligned to 512 B or more, or nullptr when the
  // device is out of memory (other failures throw rwkv::Error).
  virtual void* allocate(size_t bytes) = 0;
  // Gives back memory from allocate(ptr's size = bytes). Must not return the
  // memory to others before work still using it has finished (cudaFree
  // synchronises the device). Must not throw.
  virtual void release(void* ptr, size_t bytes) = 0;
};

// The stream an allocation is used on: a cudaStream_t as an integer, 0 for
// the default stream (core/ does not include the CUDA headers).
using StreamId = uint64_t;

struct CachingAllocatorStats {
  size_t bytes_in_use = 0;         // blocks handed out (rounded sizes, including the waste of unsplit blocks)
  size_t bytes_requested = 0;      // the same blocks' sizes as requested
  size_t peak_bytes_in_use = 0;    // since construction or reset_peak_stats()
  size_t bytes_reserved = 0;       // held from the backing allocator
  size_t peak_bytes_reserved = 0;
  size_t bytes_cached = 0;         // reserved but not in use: bytes_reserved - bytes_in_use
  uint64_t segments = 0;           // backing allocations held now
  uint64_t allocations = 0;        // allocate() calls that succeeded
  uint64_t frees = 0;              // free() calls (of non-null pointers)
  uint64_t cache_hits = 0;         // allocations served from cached memory
  uint64_t cache_misses = 0;       // allocations that needed a backing allocation
  uint64_t backing_allocs = 0;     // successful BackingAllocator::allocate calls
  uint64_t backing_frees = 0;      // BackingAllocator::release calls
  uint64_t backing_failures = 0;   // BackingAllocator::allocate calls that returned nullptr
  uint64_t oom_retries = 0;        // times the cache was emptied to retry a failed backing allocation
  uint64_t ooms = 0;               // allocations that failed after the retry (rwkv::Error thrown)
};

struct CachingAllocatorOptions {
  bool caching = true;              // false: plain backing allocations (debugging)
  std::string name = "device";      // in error messages, e.g. "cuda:0"
};

class CachingAllocator {
 public:
  static constexpr size_t kMinBlock = 512;                  // request granularity
  static constexpr size_t kSmallRequest = size_t{1} << 20;  // largest small block; large split threshold
  static constexpr size_t kSmallSegment = size_t{2} << 20;  // segment of the small pool
  static constexpr size_t kMidRequest = size_t{10} << 20;   // large requests below this share ...
  static constexpr size_t kMidSegment = size_t{20} << 20;   // ... a 20 MiB segment
  static constexpr size_t kLargeRound = size_t{2} << 20;    // bigger segments: request rounded to 2 MiB
  static constexpr size_t kMaxRequest = size_t{1} << 60;    // larger requests are errors, not overflows

  explicit CachingAllocator(std::unique_ptr<BackingAllocator> backing, CachingAllocatorOptions options = {});
  // Releases the cached segments. Blocks still in use are left to the
  // backing allocator (their segments are not released).
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // `bytes` of memory for use on `stream`, 512-B aligned. Throws rwkv::Error
  // when the backing allocator is out of memory even after emptying the cache.
  void* allocate(size_t bytes, StreamId stream = 0);
  // Returns a pointer from allocate() to the cache (nullptr: nothing).
  // Throws rwkv::Error for a pointer this allocator did not hand out.
  void free(void* ptr);
  // Releases every segment none of whose memory is in use; returns the bytes released.
  size_t empty_cache();

  CachingAllocatorStats stats() const;
  // Peaks restart from the current values.
  void reset_peak_stats();
  // Size of the block behind a live pointer (>= the rounded request); 0 if unknown.
  size_t block_size(const void* ptr) const;
  bool caching() const { return options_.caching; }
  const std::string& name() const { return options_.name; }

  static size_t round_size(size_t bytes);          // request -> block size
  static size_t segment_size(size_t rounded);      // block size -> backing allocation of a miss
  static bool is_small(size_t rounded) { return rounded <= kSmallRequest; }

 private:
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    size_t requested = 0;  // while allocated
    StreamId stream = 0;
    bool small = false;
    bool allocated = false;
    Block* prev = nullptr;  // neighbours in the same segment, by address
    Block* next = nullptr;
  };
  struct BlockOrder {  // best fit: by stream, then size, then address
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeSet = std::set<Block*, BlockOrder>;

  FreeSet& pool(bool small) { return small ? free_small_ : free_large_; }
  Block* take_cached(size_t size, StreamId stream);
  static Block* absorb_next(Block* a);
  void* backing_allocate(size_t segment, size_t request);
  size_t release_free_segments();
  void note_in_use(Block* block, size_t request);

  std::unique_ptr<BackingAllocator> backing_;
  CachingAllocatorOptions options_;
  mutable std::mutex mutex_;
  FreeSet free_small_, free_large_;
  std::unordered_map<const void*, Block*> live_;  // allocated blocks by address
  CachingAllocatorStats stats_;
};

// Whether an environment value switches caching on: unset, empty or anything
// but "0", "false", "off", "no" (any case) means on.
bool caching_allocator_enabled_by(const char* env_value);

// "1.50 GiB": bytes for messages.
std::string format_bytes(size_t bytes);

}  // namespace rwkv
