// How many bytes each rank sends per collective: the analytic formulas the
// byte counters of comm.h are tested against, and what bench/parallel prints.
//
// With n ranks in the group, N elements of e bytes (all-reduce), and the
// balanced chunking below (chunk c has len_c elements, sum len_c = N):
//
//   all_reduce_sum   rank r sends (N - len_r) e  in the reduce-scatter phase
//                    (every chunk but its own, each to the chunk's owner)
//                    + (n - 1) len_r e           in the all-gather phase
//                  = (N + (n - 2) len_r) e,  i.e. 2 (n - 1) N e / n when n | N
//                    (the ring all-reduce volume; same bandwidth cost as NCCL's ring)
//   reduce_scatter   (n - 1) M e, M = out.numel() (= in.numel() / n)
//   all_gather       (n - 1) M e, M = in.numel()
//   broadcast        root: (n - 1) N e (linear fan-out), others 0
//   send             N e
//
// A group of one sends nothing. Pure arithmetic: no MPI.
#pragma once

#include <cstdint>

namespace rwkv::parallel {

// The balanced split of n elements into `parts` contiguous chunks: the first
// (n mod parts) chunks have one element more, so sizes differ by at most one.
struct ChunkRange {
  int64_t begin = 0;
  int64_t length = 0;
};
ChunkRange balanced_chunk(int64_t n, int parts, int index);

uint64_t all_reduce_bytes_sent(int64_t numel, int64_t elem_size, int group_size, int rank);
uint64_t reduce_scatter_bytes_sent(int64_t out_numel, int64_t elem_size, int group_size);
uint64_t all_gather_bytes_sent(int64_t in_numel, int64_t elem_size, int group_size);
uint64_t broadcast_bytes_sent(int64_t numel, int64_t elem_size, int group_size, int rank, int root);

}  // namespace rwkv::parallel
