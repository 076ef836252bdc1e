#include "parallel/comm_volume.h"

#include "core/error.h"

namespace rwkv::parallel {

ChunkRange balanced_chunk(int64_t n, int parts, int index) {
  RWKV_CHECK(parts >= 1 && index >= 0 && index < parts && n >= 0, "balanced_chunk(", n, ", ", parts, ", ", index,
             "): expected n >= 0 and 0 <= index < parts");
  const int64_t base = n / parts, extra = n % parts;
  ChunkRange c;
  c.length = base + (index < extra ? 1 : 0);
  c.begin = index * base + (index < extra ? index : extra);
  return c;
}

uint64_t all_reduce_bytes_sent(int64_t numel, int64_t elem_size, int group_size, int rank) {
  if (group_size <= 1) return 0;
  const int64_t own = balanced_chunk(numel, group_size, rank).length;
  return static_cast<uint64_t>((numel - own) + int64_t{group_size - 1} * own) * static_cast<uint64_t>(elem_size);
}

uint64_t reduce_scatter_bytes_sent(int64_t out_numel, int64_t elem_size, int group_size) {
  if (group_size <= 1) return 0;
  return static_cast<uint64_t>(int64_t{group_size - 1} * out_numel * elem_size);
}

uint64_t all_gather_bytes_sent(int64_t in_numel, int64_t elem_size, int group_size) {
  if (group_size <= 1) return 0;
  return static_cast<uint64_t>(int64_t{group_size - 1} * in_numel * elem_size);
}

uint64_t broadcast_bytes_sent(int64_t numel, int64_t elem_size, int group_size, int rank, int root) {
  if (group_size <= 1 || rank != root) return 0;
  return static_cast<uint64_t>(int64_t{group_size - 1} * numel * elem_size);
}

}  // namespace rwkv::parallel
