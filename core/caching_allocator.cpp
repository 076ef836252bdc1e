#include "core/caching_allocator.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <tuple>
#include <vector>

#include "core/error.h"

namespace rwkv {

namespace {
size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }
}  // namespace

std::string format_bytes(size_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%zu B", bytes);
  } else {
    std::snprintf(text, sizeof text, "%.2f %s", value, units[unit]);
  }
  return text;
}

bool caching_allocator_enabled_by(const char* env_value) {
  if (env_value == nullptr) return true;
  std::string v(env_value);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return !(v == "0" || v == "false" || v == "off" || v == "no");
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;  // 0 B too: every allocation is a distinct pointer
  return round_up(bytes, kMinBlock);
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (is_small(rounded)) return kSmallSegment;
  if (rounded < kMidRequest) return kMidSegment;
  return round_up(rounded, kLargeRound);
}

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  return std::make_tuple(a->stream, a->size, reinterpret_cast<uintptr_t>(a->ptr)) <
         std::make_tuple(b->stream, b->size, reinterpret_cast<uintptr_t>(b->ptr));
}

CachingAllocator::CachingAllocator(std::unique_ptr<BackingAllocator> backing, CachingAllocatorOptions options)
    : backing_(std::move(backing)), options_(std::move(options)) {
  RWKV_CHECK(backing_ != nullptr, "CachingAllocator: no backing allocator");
}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
  // What is left belongs to segments with blocks still in use: their memory
  // stays with the backing allocator; only the bookkeeping goes.
  for (FreeSet* set : {&free_small_, &free_large_}) {
    for (Block* b : *set) delete b;
    set->clear();
  }
  for (auto& [ptr, b] : live_) delete b;
  live_.clear();
}

// a takes in its successor in the segment (a->next): one block spanning both.
CachingAllocator::Block* CachingAllocator::absorb_next(Block* a) {
  Block* n = a->next;
  a->size += n->size;
  a->next = n->next;
  if (n->next != nullptr) n->next->prev = a;
  delete n;
  return a;
}

// The smallest cached block of the right pool and stream that holds `size`
// bytes, removed from its free set; nullptr when there is none.
CachingAllocator::Block* CachingAllocator::take_cached(size_t size, StreamId stream) {
  FreeSet& set = pool(is_small(size));
  Block key;
  key.stream = stream;
  key.size = size;
  key.ptr = nullptr;
  auto it = set.lower_bound(&key);
  if (it == set.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  set.erase(it);
  return b;
}

size_t CachingAllocator::release_free_segments() {
  size_t released = 0;
  for (FreeSet* set : {&free_small_, &free_large_}) {
    for (auto it = set->begin(); it != set->end();) {
      Block* b = *it;
      if (b->prev != nullptr || b->next != nullptr) {  // part of a segment with blocks in use
        ++it;
        continue;
      }
      it = set->erase(it);
      backing_->release(b->ptr, b->size);
      released += b->size;
      stats_.bytes_reserved -= b->size;
      stats_.segments -= 1;
      stats_.backing_frees += 1;
      delete b;
    }
  }
  stats_.bytes_cached = stats_.bytes_reserved - stats_.bytes_in_use;
  return released;
}

// A new segment of `segment` bytes, emptying the cache and retrying once when
// the backing allocator is out of memory.
void* CachingAllocator::backing_allocate(size_t segment, size_t request) {
  void* ptr = backing_->allocate(segment);
  size_t released = 0;
  if (ptr == nullptr) {
    stats_.backing_failures += 1;
    stats_.oom_retries += 1;
    released = release_free_segments();
    ptr = backing_->allocate(segment);
    if (ptr == nullptr) stats_.backing_failures += 1;
  }
  if (ptr == nullptr) {
    stats_.ooms += 1;
    RWKV_FAIL("out of memory on ", options_.name, " allocating ", request, " bytes (", format_bytes(request),
              segment != request ? str_cat("; a ", format_bytes(segment), " segment") : std::string(), "): ",
              format_bytes(stats_.bytes_in_use), " in use, ", format_bytes(stats_.bytes_cached),
              " still cached in partly used segments, after releasing ", format_bytes(released),
              " of cached memory and retrying",
              "\n  ---> HINT: reduce train.micro_batch (or ctx_len), set train.recompute: true, or add "
              "tensor/pipeline parallelism");
  }
  stats_.backing_allocs += 1;
  stats_.segments += 1;
  stats_.bytes_reserved += segment;
  stats_.peak_bytes_reserved = std::max(stats_.peak_bytes_reserved, stats_.bytes_reserved);
  return ptr;
}

void CachingAllocator::note_in_use(Block* b, size_t request) {
  b->allocated = true;
  b->requested = request;
  live_.emplace(b->ptr, b);
  stats_.allocations += 1;
  stats_.bytes_in_use += b->size;
  stats_.bytes_requested += request;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  stats_.bytes_cached = stats_.bytes_reserved - stats_.bytes_in_use;
}

void* CachingAllocator::allocate(size_t bytes, StreamId stream) {
  RWKV_CHECK(bytes <= kMaxRequest, "out of memory on ", options_.name, ": request of ", bytes,
             " bytes is beyond any device\n  ---> HINT: a size computation overflowed");
  std::lock_guard<std::mutex> lock(mutex_);

  if (!options_.caching) {
    const size_t size = std::max<size_t>(bytes, 1);
    void* ptr = backing_allocate(size, bytes);
    auto* b = new Block;
    b->ptr = static_cast<char*>(ptr);
    b->size = size;
    b->stream = stream;
    stats_.cache_misses += 1;
    note_in_use(b, bytes);
    return ptr;
  }

  const size_t size = round_size(bytes);
  const bool small = is_small(size);
  Block* b = take_cached(size, stream);
  if (b != nullptr) {
    stats_.cache_hits += 1;
  } else {
    const size_t segment = segment_size(size);
    void* ptr = backing_allocate(segment, bytes);
    b = new Block;
    b->ptr = static_cast<char*>(ptr);
    b->size = segment;
    b->stream = stream;
    b->small = small;
    stats_.cache_misses += 1;
  }

  // Split off the rest when it is worth keeping (see the header: the bound on waste).
  const size_t rest = b->size - size;
  if (small ? rest >= kMinBlock : rest > kSmallRequest) {
    auto* tail = new Block;
    tail->ptr = b->ptr + size;
    tail->size = rest;
    tail->stream = stream;
    tail->small = small;
    tail->prev = b;
    tail->next = b->next;
    if (b->next != nullptr) b->next->prev = tail;
    b->next = tail;
    b->size = size;
    pool(small).insert(tail);
  }
  note_in_use(b, bytes);
  return b->ptr;
}

void CachingAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  RWKV_CHECK(it != live_.end(), "CachingAllocator(", options_.name, "): free of ", ptr,
             ", which this allocator did not hand out or has already freed");
  Block* b = it->second;
  live_.erase(it);
  stats_.frees += 1;
  stats_.bytes_in_use -= b->size;
  stats_.bytes_requested -= b->requested;
  b->allocated = false;
  b->requested = 0;

  if (!options_.caching) {
    backing_->release(b->ptr, b->size);
    stats_.bytes_reserved -= b->size;
    stats_.segments -= 1;
    stats_.backing_frees += 1;
    stats_.bytes_cached = stats_.bytes_reserved - stats_.bytes_in_use;
    delete b;
    return;
  }

  // Merge with free neighbours of the same segment (they are in the free set
  // under their old sizes: take them out before the size changes).
  FreeSet& set = pool(b->small);
  if (b->prev != nullptr && !b->prev->allocated) {
    set.erase(b->prev);
    b = absorb_next(b->prev);
  }
  if (b->next != nullptr && !b->next->allocated) {
    set.erase(b->next);
    absorb_next(b);
  }
  set.insert(b);
  stats_.bytes_cached = stats_.bytes_reserved - stats_.bytes_in_use;
}

size_t CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  return release_free_segments();
}

CachingAllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
  stats_.peak_bytes_reserved = stats_.bytes_reserved;
}

size_t CachingAllocator::block_size(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  return it == live_.end() ? 0 : it->second->size;
}

}  // namespace rwkv
