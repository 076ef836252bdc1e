#include "checkpoint/slice_region.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace rwkv::checkpoint {

namespace {

// The intersection's bounds; false when it is empty.
bool intersect(const Box& a, const Box& b, Shape& lo, Shape& hi) {
  RWKV_CHECK(a.offset.size() == a.shape.size() && b.offset.size() == b.shape.size() && a.shape.size() == b.shape.size(),
             "slice boxes of different rank: ", shape_str(a.shape), " and ", shape_str(b.shape));
  const size_t rank = a.shape.size();
  lo.assign(rank, 0);
  hi.assign(rank, 0);
  for (size_t d = 0; d < rank; ++d) {
    lo[d] = std::max(a.offset[d], b.offset[d]);
    hi[d] = std::min(a.offset[d] + a.shape[d], b.offset[d] + b.shape[d]);
    if (lo[d] >= hi[d]) return false;
  }
  return true;
}

// Row-major linear index of global position pos within box.
int64_t index_in(const Box& box, const std::vector<int64_t>& pos) {
  int64_t i = 0;
  for (size_t d = 0; d < pos.size(); ++d) i = i * box.shape[d] + (pos[d] - box.offset[d]);
  return i;
}

}  // namespace

int64_t overlap_numel(const Box& a, const Box& b) {
  Shape lo, hi;
  if (!intersect(a, b, lo, hi)) return 0;
  int64_t n = 1;
  for (size_t d = 0; d < lo.size(); ++d) n *= hi[d] - lo[d];
  return n;
}

int64_t copy_overlap(const uint8_t* src_data, const Box& src, uint8_t* dst_data, const Box& dst, size_t elem) {
  Shape lo, hi;
  if (!intersect(src, dst, lo, hi)) return 0;
  const size_t rank = lo.size();
  if (rank == 0) {  // scalars
    std::memcpy(dst_data, src_data, elem);
    return 1;
  }
  const int64_t run = hi[rank - 1] - lo[rank - 1];
  const size_t run_bytes = static_cast<size_t>(run) * elem;
  std::vector<int64_t> pos(lo.begin(), lo.end());  // global position of the current run's first element
  int64_t copied = 0;
  while (true) {
    std::memcpy(dst_data + static_cast<size_t>(index_in(dst, pos)) * elem,
                src_data + static_cast<size_t>(index_in(src, pos)) * elem, run_bytes);
    copied += run;
    // Advance the outer dimensions like an odometer.
    int64_t d = static_cast<int64_t>(rank) - 2;
    for (; d >= 0; --d) {
      const size_t u = static_cast<size_t>(d);
      if (++pos[u] < hi[u]) break;
      pos[u] = lo[u];
    }
    if (d < 0) return copied;
  }
}

}  // namespace rwkv::checkpoint
