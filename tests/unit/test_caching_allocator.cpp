// The caching allocator's policy (core/caching_allocator.h) over a fake
// backing allocator that hands out real host memory and records every call:
// reuse, the steady training-step loop without backing calls, splitting and
// its waste bound, merging, streams, exact statistics, the out-of-memory
// retry, empty_cache, the non-caching mode, and two threads at once.
#include "core/caching_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace rwkv {
namespace {

constexpr size_t KiB = size_t{1} << 10;
constexpr size_t MiB = size_t{1} << 20;

// What the fake backing allocator saw; shared with the test, so it outlives
// the allocator that owns the fake.
struct BackingLog {
  struct Call {
    bool allocate;  // false: release
    size_t bytes;
    void* ptr;      // nullptr: a failed allocate
  };
  std::mutex mutex;
  std::vector<Call> calls;
  std::map<void*, size_t> live;  // backing allocations not yet released
  size_t live_bytes = 0;
  int fail_next = 0;                    // that many allocate() calls return nullptr
  size_t capacity = SIZE_MAX;           // allocate() fails beyond this many live bytes

  size_t allocs() {
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<size_t>(std::count_if(calls.begin(), calls.end(), [](const Call& c) { return c.allocate; }));
  }
  size_t call_count() {
    std::lock_guard<std::mutex> lock(mutex);
    return calls.size();
  }
};

class FakeBacking final : public BackingAllocator {
 public:
  explicit FakeBacking(std::shared_ptr<BackingLog> log) : log_(std::move(log)) {}

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lock(log_->mutex);
    if (log_->fail_next > 0 || log_->live_bytes + bytes > log_->capacity) {
      if (log_->fail_next > 0) --log_->fail_next;
      log_->calls.push_back({true, bytes, nullptr});
      return nullptr;
    }
    // Real memory (untouched pages cost nothing), so tests can write into blocks.
    void* ptr = std::aligned_alloc(512, (bytes + 511) / 512 * 512);
    EXPECT_NE(ptr, nullptr);
    log_->calls.push_back({true, bytes, ptr});
    log_->live[ptr] = bytes;
    log_->live_bytes += bytes;
    return ptr;
  }

  void release(void* ptr, size_t bytes) override {
    std::lock_guard<std::mutex> lock(log_->mutex);
    auto it = log_->live.find(ptr);
    EXPECT_NE(it, log_->live.end()) << "release of memory the backing did not hand out";
    if (it == log_->live.end()) return;
    EXPECT_EQ(it->second, bytes) << "release with another size than allocated";
    log_->live_bytes -= it->second;
    log_->live.erase(it);
    log_->calls.push_back({false, bytes, ptr});
    std::free(ptr);
  }

 private:
  std::shared_ptr<BackingLog> log_;
};

struct Fixture {
  std::shared_ptr<BackingLog> log = std::make_shared<BackingLog>();
  std::unique_ptr<CachingAllocator> alloc;
  explicit Fixture(bool caching = true, const std::string& name = "fake:0") {
    CachingAllocatorOptions options;
    options.caching = caching;
    options.name = name;
    alloc = std::make_unique<CachingAllocator>(std::make_unique<FakeBacking>(log), options);
  }
};

char* as_bytes(void* p) { return static_cast<char*>(p); }

// ------------------------------------------------------------------ sizes

TEST(CachingAllocator, RoundsRequestsAndSizesSegments) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(MiB), MiB);
  EXPECT_EQ(CachingAllocator::round_size(MiB + 1), MiB + 512);
  EXPECT_TRUE(CachingAllocator::is_small(MiB));
  EXPECT_FALSE(CachingAllocator::is_small(MiB + 512));
  // Small blocks share 2 MiB segments; large ones below 10 MiB share 20 MiB
  // segments; bigger ones get their size rounded up to 2 MiB.
  EXPECT_EQ(CachingAllocator::segment_size(512), 2 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(MiB), 2 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(MiB + 512), 20 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * MiB - 512), 20 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * MiB), 10 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * MiB + 512), 12 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(1000 * MiB + 512), 1002 * MiB);
}

TEST(CachingAllocator, EnvironmentSwitch) {
  EXPECT_TRUE(caching_allocator_enabled_by(nullptr));
  EXPECT_TRUE(caching_allocator_enabled_by(""));
  EXPECT_TRUE(caching_allocator_enabled_by("1"));
  EXPECT_TRUE(caching_allocator_enabled_by("yes"));
  EXPECT_FALSE(caching_allocator_enabled_by("0"));
  EXPECT_FALSE(caching_allocator_enabled_by("false"));
  EXPECT_FALSE(caching_allocator_enabled_by("OFF"));
  EXPECT_FALSE(caching_allocator_enabled_by("No"));
}

TEST(CachingAllocator, FormatsBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(20 * MiB), "20.00 MiB");
  EXPECT_EQ(format_bytes(size_t{3} << 30), "3.00 GiB");
}

// ------------------------------------------------------------------ reuse

TEST(CachingAllocator, ReusesAFreedBlock) {
  Fixture f;
  void* a = f.alloc->allocate(1000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 512, 0u);
  f.alloc->free(a);
  void* b = f.alloc->allocate(1000);
  EXPECT_EQ(b, a);
  f.alloc->free(b);
  // A smaller request fits the same cached block too.
  void* c = f.alloc->allocate(10);
  EXPECT_EQ(c, a);
  f.alloc->free(c);
  EXPECT_EQ(f.log->allocs(), 1u);
  EXPECT_EQ(f.log->call_count(), 1u);  // nothing released either
  const CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.cache_misses, 1u);
  EXPECT_EQ(s.cache_hits, 2u);
  EXPECT_EQ(s.backing_allocs, 1u);
}

TEST(CachingAllocator, SmallRequestsShareOneSegment) {
  Fixture f;
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(f.alloc->allocate(512 * KiB));  // 4 x 512 KiB = one 2 MiB segment
  EXPECT_EQ(f.log->allocs(), 1u);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(as_bytes(blocks[i]), as_bytes(blocks[0]) + i * 512 * KiB);
  blocks.push_back(f.alloc->allocate(512));  // segment full: a second one
  EXPECT_EQ(f.log->allocs(), 2u);
  for (void* p : blocks) f.alloc->free(p);
  EXPECT_EQ(f.alloc->stats().segments, 2u);
  EXPECT_EQ(f.alloc->stats().bytes_in_use, 0u);
}

// The training-step pattern: parameters live for the whole run; each step
// allocates activations, allocates and frees op scratch in between, and frees
// everything in its own order. After the first step no call reaches the
// backing allocator.
TEST(CachingAllocator, SteadyTrainingLoopMakesNoBackingCalls) {
  Fixture f;
  std::vector<void*> params;
  for (size_t bytes : {size_t{97 * 256 * 4}, 256 * 256 * 4 * size_t{13}, size_t{256 * 4}, 64 * MiB + 12})
    params.push_back(f.alloc->allocate(bytes));

  const std::vector<size_t> activation_sizes = {2 * 33 * 256 * 4, 3 * MiB, 700 * KiB, 12 * MiB + 100, 48,
                                                5 * MiB,          2 * 33 * 97 * 4, 1, 0, 33 * MiB};
  const std::vector<size_t> scratch_sizes = {5000, 64 * KiB, 2 * MiB + 4, 256 * 8, 11 * MiB};
  auto step = [&] {
    std::vector<void*> acts;
    for (size_t i = 0; i < activation_sizes.size(); ++i) {
      acts.push_back(f.alloc->allocate(activation_sizes[i]));
      void* scratch = f.alloc->allocate(scratch_sizes[i % scratch_sizes.size()]);
      f.alloc->free(scratch);
    }
    // Backward frees activations as it walks back, with scratch in between.
    for (size_t i = acts.size(); i-- > 0;) {
      if (i % 3 == 0) {
        void* scratch = f.alloc->allocate(scratch_sizes[(i + 2) % scratch_sizes.size()]);
        f.alloc->free(scratch);
      }
      f.alloc->free(acts[i]);
    }
  };

  step();
  const size_t calls_after_first = f.log->call_count();
  const CachingAllocatorStats first = f.alloc->stats();
  for (int i = 0; i < 100; ++i) step();
  EXPECT_EQ(f.log->call_count(), calls_after_first);
  const CachingAllocatorStats s = f.alloc->stats();
  const uint64_t per_step = activation_sizes.size() * 2 + 4;  // activations, scratch, scratch in backward
  EXPECT_EQ(s.allocations, first.allocations + 100 * per_step);
  EXPECT_EQ(s.cache_hits, first.cache_hits + 100 * per_step);
  EXPECT_EQ(s.cache_misses, first.cache_misses);
  EXPECT_EQ(s.backing_allocs, first.backing_allocs);
  EXPECT_EQ(s.bytes_reserved, first.bytes_reserved);
  EXPECT_EQ(s.peak_bytes_in_use, first.peak_bytes_in_use);
  EXPECT_EQ(s.bytes_in_use, first.bytes_in_use);  // the parameters
  for (void* p : params) f.alloc->free(p);
}

// A fixed but arbitrary pattern repeated: the cache stops calling the backing
// allocator after a few steps (best fit is not guaranteed to place step 2
// exactly as step 1, but reserved memory only grows until the pattern fits).
TEST(CachingAllocator, RandomRepeatedPatternsSettle) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Fixture f;
    std::mt19937_64 rng(seed);
    struct Op {
      bool alloc;
      size_t bytes_or_slot;
    };
    // A pattern: 40 allocations of random sizes, freed in a random order
    // interleaved with the allocations.
    std::vector<Op> ops;
    std::vector<size_t> open;
    for (size_t i = 0; i < 40; ++i) {
      const size_t bytes = rng() % 3 == 0 ? rng() % (30 * MiB) : rng() % (600 * KiB);
      ops.push_back({true, bytes});
      open.push_back(i);
      while (!open.empty() && rng() % 2 == 0) {
        const size_t k = rng() % open.size();
        ops.push_back({false, open[k]});
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    for (size_t k : open) ops.push_back({false, k});
    auto step = [&] {
      std::vector<void*> ptrs;
      for (const Op& op : ops) {
        if (op.alloc) {
          ptrs.push_back(f.alloc->allocate(op.bytes_or_slot));
        } else {
          f.alloc->free(ptrs[op.bytes_or_slot]);
        }
      }
    };
    int last_step_with_calls = 0;
    for (int s = 1; s <= 30; ++s) {
      const size_t before = f.log->call_count();
      step();
      if (f.log->call_count() != before) last_step_with_calls = s;
    }
    EXPECT_LE(last_step_with_calls, 3) << "seed " << seed;
  }
}

// ------------------------------------------------------------- splitting

TEST(CachingAllocator, SplitsLargeSegmentsAndMergesNeighbours) {
  Fixture f;
  void* a = f.alloc->allocate(3 * MiB);  // a 20 MiB segment: 3 MiB + 17 MiB cached
  EXPECT_EQ(f.alloc->block_size(a), 3 * MiB);
  void* b = f.alloc->allocate(5 * MiB);  // from the cached rest, right after a
  EXPECT_EQ(as_bytes(b), as_bytes(a) + 3 * MiB);
  void* c = f.alloc->allocate(4 * MiB);
  EXPECT_EQ(as_bytes(c), as_bytes(b) + 5 * MiB);
  EXPECT_EQ(f.log->allocs(), 1u);
  // Free the outer two, then the middle one: all three merge with the 8 MiB
  // rest into the whole segment again, which then serves a 19 MiB request.
  f.alloc->free(a);
  f.alloc->free(c);
  EXPECT_EQ(f.alloc->allocate(3 * MiB), a);  // best fit: a's 3 MiB hole, not the 12 MiB tail
  f.alloc->free(a);
  f.alloc->free(b);
  void* d = f.alloc->allocate(19 * MiB);
  EXPECT_EQ(d, a);
  EXPECT_EQ(f.alloc->block_size(d), 20 * MiB);  // the 1 MiB rest is not worth a block of its own
  EXPECT_EQ(f.log->allocs(), 1u);
  f.alloc->free(d);
  EXPECT_EQ(f.alloc->empty_cache(), 20 * MiB);  // one whole segment again
}

TEST(CachingAllocator, BestFitPrefersTheSmallestCachedBlock) {
  Fixture f;
  void* big = f.alloc->allocate(40 * MiB);   // its own 40 MiB segment
  void* mid = f.alloc->allocate(16 * MiB);   // its own 16 MiB segment
  f.alloc->free(big);
  f.alloc->free(mid);
  void* x = f.alloc->allocate(12 * MiB);
  EXPECT_EQ(x, mid);
  EXPECT_EQ(f.alloc->block_size(x), 12 * MiB);  // 4 MiB split off
  void* y = f.alloc->allocate(3 * MiB);
  EXPECT_EQ(as_bytes(y), as_bytes(mid) + 12 * MiB);  // the 4 MiB rest, not the 40 MiB block
  EXPECT_EQ(f.alloc->block_size(y), 4 * MiB);         // a 1 MiB rest stays attached (the waste bound)
  EXPECT_EQ(f.log->allocs(), 2u);
  f.alloc->free(x);
  f.alloc->free(y);
}

// Random sizes, lifetimes and frees: every block is 512-aligned, no two live
// blocks overlap, waste stays within its bound, and the statistics always
// equal what the test itself counts.
TEST(CachingAllocator, WasteIsBoundedAndBlocksNeverOverlap) {
  Fixture f;
  std::mt19937_64 rng(7);
  struct Live {
    size_t request;
    size_t size;
  };
  std::map<char*, Live> live;
  size_t largest_waste_large = 0;
  for (int i = 0; i < 4000; ++i) {
    if (live.size() < 24 && (live.empty() || rng() % 5 < 3)) {
      const int kind = static_cast<int>(rng() % 4);
      const size_t bytes = kind == 0 ? rng() % 2048 : kind == 1 ? rng() % (2 * MiB) : kind == 2 ? rng() % (12 * MiB)
                                                                                          : rng() % (48 * MiB);
      char* p = as_bytes(f.alloc->allocate(bytes));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % 512, 0u);
      const size_t size = f.alloc->block_size(p);
      const size_t rounded = CachingAllocator::round_size(bytes);
      ASSERT_GE(size, rounded);
      if (CachingAllocator::is_small(rounded)) {
        ASSERT_EQ(size, rounded) << "small blocks are split exactly";
      } else {
        ASSERT_LE(size - rounded, CachingAllocator::kSmallRequest) << "waste bound of a large block";
        largest_waste_large = std::max(largest_waste_large, size - rounded);
      }
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + size, next->first) << "overlaps the next live block";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.size, p) << "overlaps the previous live block";
      }
      live[p] = {bytes, size};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng() % live.size()));
      f.alloc->free(it->first);
      live.erase(it);
    }
    size_t in_use = 0, requested = 0;
    for (const auto& [p, l] : live) in_use += l.size, requested += l.request;
    const CachingAllocatorStats s = f.alloc->stats();
    ASSERT_EQ(s.bytes_in_use, in_use);
    ASSERT_EQ(s.bytes_requested, requested);
    ASSERT_EQ(s.bytes_reserved, f.log->live_bytes);
    ASSERT_EQ(s.segments, f.log->live.size());
    ASSERT_EQ(s.bytes_cached, s.bytes_reserved - s.bytes_in_use);
    ASSERT_EQ(s.cache_hits + s.cache_misses, s.allocations);
  }
  EXPECT_GT(largest_waste_large, 0u);  // the unsplit case did occur
  for (const auto& [p, l] : live) f.alloc->free(p);
  f.alloc->empty_cache();
  EXPECT_TRUE(f.log->live.empty());
}

// --------------------------------------------------------------- streams

TEST(CachingAllocator, BlocksServeOnlyTheirStream) {
  Fixture f;
  void* a = f.alloc->allocate(1000, 1);
  f.alloc->free(a);
  void* b = f.alloc->allocate(1000, 2);  // stream 1's cached block is not used for stream 2
  EXPECT_NE(b, a);
  EXPECT_EQ(f.log->allocs(), 2u);
  void* c = f.alloc->allocate(1000, 1);
  EXPECT_EQ(c, a);
  void* big = f.alloc->allocate(30 * MiB, 2);
  f.alloc->free(big);
  void* big1 = f.alloc->allocate(30 * MiB, 1);
  EXPECT_NE(big1, big);
  EXPECT_EQ(f.log->allocs(), 4u);
  for (void* p : {b, c, big1}) f.alloc->free(p);
}

// ------------------------------------------------------------ statistics

TEST(CachingAllocator, StatisticsAreExact) {
  Fixture f;
  void* a = f.alloc->allocate(1000);  // small: 1024 B of a new 2 MiB segment
  CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.allocations, 1u);
  EXPECT_EQ(s.cache_misses, 1u);
  EXPECT_EQ(s.cache_hits, 0u);
  EXPECT_EQ(s.backing_allocs, 1u);
  EXPECT_EQ(s.segments, 1u);
  EXPECT_EQ(s.bytes_reserved, 2 * MiB);
  EXPECT_EQ(s.bytes_in_use, 1024u);
  EXPECT_EQ(s.bytes_requested, 1000u);
  EXPECT_EQ(s.bytes_cached, 2 * MiB - 1024);
  EXPECT_EQ(s.peak_bytes_in_use, 1024u);

  void* b = f.alloc->allocate(3 * MiB);  // large: a new 20 MiB segment
  void* c = f.alloc->allocate(100);      // 512 B from the small segment
  s = f.alloc->stats();
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.cache_misses, 2u);
  EXPECT_EQ(s.cache_hits, 1u);
  EXPECT_EQ(s.backing_allocs, 2u);
  EXPECT_EQ(s.segments, 2u);
  EXPECT_EQ(s.bytes_reserved, 22 * MiB);
  EXPECT_EQ(s.bytes_in_use, 3 * MiB + 1536);
  EXPECT_EQ(s.bytes_requested, 3 * MiB + 1100);
  EXPECT_EQ(s.bytes_cached, 22 * MiB - 3 * MiB - 1536);
  EXPECT_EQ(s.peak_bytes_in_use, 3 * MiB + 1536);
  EXPECT_EQ(s.peak_bytes_reserved, 22 * MiB);

  f.alloc->free(b);
  void* d = f.alloc->allocate(15 * MiB);  // from b's cached 20 MiB: a hit
  EXPECT_EQ(d, b);
  s = f.alloc->stats();
  EXPECT_EQ(s.frees, 1u);
  EXPECT_EQ(s.cache_hits, 2u);
  EXPECT_EQ(s.bytes_in_use, 15 * MiB + 1536);
  EXPECT_EQ(s.peak_bytes_in_use, 15 * MiB + 1536);

  f.alloc->free(a);
  f.alloc->free(c);
  f.alloc->free(d);
  s = f.alloc->stats();
  EXPECT_EQ(s.frees, 4u);
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.bytes_requested, 0u);
  EXPECT_EQ(s.bytes_cached, 22 * MiB);
  EXPECT_EQ(s.backing_frees, 0u);

  EXPECT_EQ(f.alloc->empty_cache(), 22 * MiB);
  s = f.alloc->stats();
  EXPECT_EQ(s.bytes_reserved, 0u);
  EXPECT_EQ(s.bytes_cached, 0u);
  EXPECT_EQ(s.segments, 0u);
  EXPECT_EQ(s.backing_frees, 2u);
  EXPECT_EQ(s.peak_bytes_reserved, 22 * MiB);
  EXPECT_EQ(s.peak_bytes_in_use, 15 * MiB + 1536);
  f.alloc->reset_peak_stats();
  s = f.alloc->stats();
  EXPECT_EQ(s.peak_bytes_in_use, 0u);
  EXPECT_EQ(s.peak_bytes_reserved, 0u);
  EXPECT_EQ(s.oom_retries, 0u);
  EXPECT_EQ(s.ooms, 0u);
}

// ----------------------------------------------------------- empty_cache

TEST(CachingAllocator, EmptyCacheReturnsEverythingNotInUse) {
  Fixture f;
  std::vector<void*> ptrs;
  for (size_t bytes : {size_t{100}, 300 * KiB, 3 * MiB, 40 * MiB, 900 * KiB, 12 * MiB}) ptrs.push_back(f.alloc->allocate(bytes));
  void* kept = f.alloc->allocate(5 * MiB);  // shares the 20 MiB segment of the 3 MiB block
  for (void* p : ptrs) f.alloc->free(p);
  // Everything but kept's segment goes back.
  const size_t reserved = f.alloc->stats().bytes_reserved;
  EXPECT_EQ(f.alloc->empty_cache(), reserved - 20 * MiB);
  EXPECT_EQ(f.log->live.size(), 1u);
  EXPECT_EQ(f.log->live_bytes, 20 * MiB);
  f.alloc->free(kept);
  EXPECT_EQ(f.alloc->empty_cache(), 20 * MiB);
  EXPECT_TRUE(f.log->live.empty());
  EXPECT_EQ(f.alloc->stats().bytes_reserved, 0u);
  EXPECT_EQ(f.alloc->stats().backing_frees, f.alloc->stats().backing_allocs);
  // Allocating again after emptying works and calls the backing again.
  void* again = f.alloc->allocate(100);
  EXPECT_EQ(f.log->live.size(), 1u);
  f.alloc->free(again);
}

TEST(CachingAllocator, DestructorReleasesTheCache) {
  Fixture f;
  f.alloc->free(f.alloc->allocate(100));
  f.alloc->free(f.alloc->allocate(30 * MiB));
  EXPECT_EQ(f.log->live.size(), 2u);
  f.alloc.reset();
  EXPECT_TRUE(f.log->live.empty());
}

// ------------------------------------------------------------------- OOM

TEST(CachingAllocator, OutOfMemoryEmptiesTheCacheAndRetriesOnce) {
  Fixture f;
  void* cached = f.alloc->allocate(12 * MiB);  // a 12 MiB segment
  f.alloc->free(cached);
  const size_t before = f.log->call_count();
  f.log->fail_next = 1;
  void* p = f.alloc->allocate(30 * MiB);
  ASSERT_NE(p, nullptr);
  // The backing saw: a failed 30 MiB allocate, the cached segment released, the retry.
  ASSERT_EQ(f.log->call_count(), before + 3);
  const BackingLog::Call fail = f.log->calls[before], rel = f.log->calls[before + 1], retry = f.log->calls[before + 2];
  EXPECT_TRUE(fail.allocate);
  EXPECT_EQ(fail.ptr, nullptr);
  EXPECT_EQ(fail.bytes, 30 * MiB);
  EXPECT_FALSE(rel.allocate);
  EXPECT_EQ(rel.bytes, 12 * MiB);
  EXPECT_EQ(rel.ptr, cached);
  EXPECT_TRUE(retry.allocate);
  EXPECT_EQ(retry.ptr, p);
  const CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.oom_retries, 1u);
  EXPECT_EQ(s.backing_failures, 1u);
  EXPECT_EQ(s.ooms, 0u);
  EXPECT_EQ(s.segments, 1u);
  EXPECT_EQ(s.bytes_reserved, 30 * MiB);
  f.alloc->free(p);
}

TEST(CachingAllocator, OutOfMemoryAfterTheRetryIsAClearError) {
  Fixture f(true, "cuda:7");
  f.log->capacity = 32 * MiB;
  void* held = f.alloc->allocate(20 * MiB);  // its own 20 MiB segment, in use
  f.alloc->free(f.alloc->allocate(1000));    // a cached 2 MiB small segment
  test::expect_error([&] { f.alloc->allocate(16 * MiB); },
                     {"out of memory on cuda:7", "allocating 16777216 bytes (16.00 MiB)", "20.00 MiB in use",
                      "0 B still cached", "after releasing 2.00 MiB", "retrying", "micro_batch", "recompute"});
  CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.ooms, 1u);
  EXPECT_EQ(s.oom_retries, 1u);
  EXPECT_EQ(s.backing_failures, 2u);
  EXPECT_EQ(s.allocations, 2u);  // the failed one is not counted
  EXPECT_EQ(s.bytes_in_use, 20 * MiB);
  EXPECT_EQ(s.bytes_reserved, 20 * MiB);
  // Still usable: what fits is allocated.
  void* small = f.alloc->allocate(1000);
  EXPECT_NE(small, nullptr);
  f.alloc->free(small);
  f.alloc->free(held);
  // An absurd size is an error before it reaches the backing allocator.
  test::expect_error([&] { f.alloc->allocate(SIZE_MAX - 100); }, {"out of memory on cuda:7", "overflow"});
}

// ----------------------------------------------------- without caching

TEST(CachingAllocator, WithoutCachingEveryCallReachesTheBacking) {
  Fixture f(false);
  EXPECT_FALSE(f.alloc->caching());
  for (int i = 0; i < 3; ++i) {
    void* a = f.alloc->allocate(1000);
    void* b = f.alloc->allocate(3 * MiB + 1);
    EXPECT_EQ(f.alloc->block_size(a), 1000u);  // exact sizes: tools see the true bounds
    EXPECT_EQ(f.alloc->block_size(b), 3 * MiB + 1);
    f.alloc->free(a);
    f.alloc->free(b);
  }
  EXPECT_EQ(f.log->call_count(), 12u);
  EXPECT_TRUE(f.log->live.empty());
  const CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.backing_allocs, 6u);
  EXPECT_EQ(s.backing_frees, 6u);
  EXPECT_EQ(s.cache_hits, 0u);
  EXPECT_EQ(s.cache_misses, 6u);
  EXPECT_EQ(s.peak_bytes_in_use, 3 * MiB + 1001);
  EXPECT_EQ(s.bytes_reserved, 0u);
  // The out-of-memory path is the same.
  f.log->capacity = MiB;
  test::expect_error([&] { f.alloc->allocate(2 * MiB); }, {"out of memory on fake:0", "2097152 bytes"});
}

// ---------------------------------------------------------------- misuse

TEST(CachingAllocator, FreeingAForeignOrFreedPointerIsAnError) {
  Fixture f;
  f.alloc->free(nullptr);  // nothing
  void* a = f.alloc->allocate(100);
  int on_stack = 0;
  test::expect_error([&] { f.alloc->free(&on_stack); }, {"fake:0", "did not hand out"});
  f.alloc->free(a);
  test::expect_error([&] { f.alloc->free(a); }, {"already freed"});
  EXPECT_EQ(f.alloc->stats().frees, 1u);
}

// --------------------------------------------------------------- threads

TEST(CachingAllocator, TwoThreadsHammeringAllocAndFree) {
  Fixture f;
  constexpr int kIterations = 200000;
  auto worker = [&](uint64_t tag) {
    struct Held {
      uint64_t* p;
      size_t words;
      uint64_t mark;
    };
    std::mt19937_64 rng(tag);
    std::vector<Held> held;
    for (int i = 0; i < kIterations; ++i) {
      if (held.size() < 8 && (held.empty() || rng() % 2 == 0)) {
        const size_t bytes = rng() % 4 == 0 ? rng() % (4 * MiB) : rng() % (64 * KiB);
        Held h{static_cast<uint64_t*>(f.alloc->allocate(bytes, 0)), bytes / 8, tag * 1000003 + static_cast<uint64_t>(i)};
        // Mark the first and last words: a block handed to both threads (or
        // overlapping another) would be overwritten before it is freed.
        if (h.words > 0) h.p[0] = h.p[h.words - 1] = h.mark;
        held.push_back(h);
      } else {
        const size_t k = rng() % held.size();
        const Held h = held[k];
        if (h.words > 0) {
          EXPECT_EQ(h.p[0], h.mark);
          EXPECT_EQ(h.p[h.words - 1], h.mark);
        }
        f.alloc->free(h.p);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    for (const Held& h : held) f.alloc->free(h.p);
  };
  std::thread t1(worker, 1), t2(worker, 2);
  t1.join();
  t2.join();
  const CachingAllocatorStats s = f.alloc->stats();
  EXPECT_EQ(s.allocations, s.frees);
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.bytes_requested, 0u);
  EXPECT_EQ(s.cache_hits + s.cache_misses, s.allocations);
  EXPECT_GT(s.cache_hits, s.cache_misses);
  EXPECT_EQ(s.bytes_reserved, f.log->live_bytes);
  f.alloc->empty_cache();
  EXPECT_TRUE(f.log->live.empty());
}

}  // namespace
}  // namespace rwkv
