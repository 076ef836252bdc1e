// Data parallelism over a dp group: each of the dp replicas computes the
// gradient of its own micro-batches, and the replicas must agree on
//
//   g = (1/dp) sum_{d=0}^{dp-1} g_d
//
// before the optimizer step. Two ways, both over the flat layout of the
// gradients (parallel/flat_layout.h), both independent of the model class:
//
// 1. GradAllReducer (plain DP, replicated optimizer): the flat gradient is cut
//    into buckets of bucket_bytes (25 MiB by default, as PyTorch DDP), each
//    bucket is packed into one staging buffer, all-reduced, scaled by 1/dp and
//    unpacked. Few large messages instead of one per tensor; memory: one bucket.
//
// 2. ZeRO-1 (Rajbhandari et al. 2020, stage 1: optimizer state sharded):
//    the flat space, padded to dp * S, is split into dp contiguous shards of S
//    elements (S a multiple of `align`); rank d owns [d S, (d+1) S).
//
//      flat:   | shard 0 (rank 0) | shard 1 (rank 1) | ... | shard dp-1 | pad |
//      step:   reduce-scatter grads   -> each rank: averaged gradient of its shard
//              AdamW on the shard only (m, v: S elements instead of N)
//              all-gather the updated shards -> every rank: all parameters
//
//    Per step and rank this sends (dp-1) S e + (dp-1) S e bytes, the same as
//    the all-reduce of plain DP, while the optimizer state shrinks dp-fold.
//
// Bit-identical results: the communicators sum every element in rank order
// whatever the chunking (comm.h), and the scaling is one multiplication by
// (float)(1/dp), so the bucket size does not change a single bit, and ZeRO-1's
// shard of the averaged gradient equals the same elements of GradAllReducer's.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/comm.h"
#include "parallel/flat_layout.h"
#include "trainer/parameters.h"

namespace rwkv::parallel {

inline constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;  // 25 MiB

class GradAllReducer {
 public:
  // dp: the data-parallel group; grads: the gradient store whose layout every
  // later call must match.
  GradAllReducer(const ParameterStore& grads, Communicator& dp, int64_t bucket_bytes = kDefaultBucketBytes);

  // grads <- the average over the dp group, bucket by bucket.
  void all_reduce_mean(ParameterStore& grads);

  // --- the same average, overlapped with backward -------------------------
  // For a store made by zeros_like_flat() (ParameterStore::flat()), whose
  // buckets are views of the gradients themselves:
  //
  //   begin_overlap(grads);            before the step's last backward
  //   grads_final_from(tensor);        whenever tensors >= tensor are final:
  //                                    starts every bucket lying wholly in
  //                                    them (last bucket first), in place
  //   finish_overlap(grads);           after backward: starts the rest,
  //                                    waits, scales by 1/dp
  //
  // Same buckets, same sums, same scaling as all_reduce_mean, so the result
  // is bit-identical (tests/parallel/test_mpi_data_parallel.cpp); only when
  // each bucket travels changes. A store that is not flat falls back to
  // all_reduce_mean at finish_overlap.
  void begin_overlap(ParameterStore& grads);
  void grads_final_from(int tensor);
  void finish_overlap(ParameterStore& grads);
  // Buckets started before finish_overlap in the last overlapped step.
  int buckets_started_early() const { return started_early_; }

  int buckets() const { return static_cast<int>((layout_.numel() + bucket_elems_ - 1) / bucket_elems_); }
  int64_t bucket_elems() const { return bucket_elems_; }
  const FlatLayout& layout() const { return layout_; }
  // The bytes this rank sends per all_reduce_mean: sum over buckets of the
  // all-reduce formula of comm_volume.h.
  uint64_t bytes_sent_per_call() const;

 private:
  FlatLayout layout_;
  Communicator& dp_;
  int64_t bucket_elems_;
  Tensor staging_;  // [bucket_elems] on the gradients' device
  // Overlap state: the flat gradient buffer ([N], undefined when the store
  // is not flat) and the lowest bucket index started so far (buckets() = none).
  Tensor flat_;
  int next_unstarted_ = 0;  // buckets [next_unstarted_, buckets()) are started
  int started_early_ = 0;
  bool overlapping_ = false;
  void start_buckets_from(int64_t flat_offset);
};

// Which contiguous flat range each dp rank owns under ZeRO-1.
class ZeroPartition {
 public:
  // align: shard sizes (and so shard starts) are multiples of it, in elements
  // (64 f32 = 256 bytes: whole cache lines and GPU memory transactions).
  ZeroPartition(const FlatLayout& layout, int dp, int64_t align = 64);

  int dp() const { return dp_; }
  int64_t numel() const { return numel_; }               // N: the parameters
  int64_t shard_numel() const { return shard_; }         // S = ceil(N / (dp align)) align
  int64_t padded_numel() const { return shard_ * dp_; }  // dp S >= N
  int64_t shard_begin(int rank) const { return shard_ * rank; }
  // The tensor pieces of rank's shard (padding has none): what that rank
  // updates. flat_offset - shard_begin(rank) indexes the shard's flat buffers
  // (gradient shard, AdamW m and v).
  const std::vector<FlatPiece>& pieces(int rank) const { return pieces_[static_cast<size_t>(rank)]; }

 private:
  int dp_;
  int64_t numel_, shard_;
  std::vector<std::vector<FlatPiece>> pieces_;
};

// ZeRO-1's two collectives, bucketed like GradAllReducer: each bucket covers
// the same sub-range [s0, s1) of every shard, so its staging buffer is
// [dp, s1 - s0] (row d = rank d's part) and one reduce-scatter / all-gather
// moves it. bucket_bytes bounds the staging buffer (all dp rows together).
class ZeroOneSync {
 public:
  ZeroOneSync(const ParameterStore& params, Communicator& dp, int64_t bucket_bytes = kDefaultBucketBytes,
              int64_t align = 64);

  const ZeroPartition& partition() const { return partition_; }
  const FlatLayout& layout() const { return layout_; }

  // grad_shard [S] <- this rank's shard of the dp-averaged flat gradient
  // (zeros over the padding). grads: same layout as the parameters.
  void reduce_scatter_mean(const ParameterStore& grads, Tensor& grad_shard);
  // Every rank's params <- the owners' values of every shard (each rank has
  // updated its own shard in place).
  void all_gather_params(ParameterStore& params);

  int buckets() const { return static_cast<int>((partition_.shard_numel() + rows_elems_ - 1) / rows_elems_); }
  // Bytes this rank sends per reduce_scatter_mean, and per all_gather_params.
  uint64_t reduce_scatter_bytes_per_call() const;
  uint64_t all_gather_bytes_per_call() const;

 private:
  FlatLayout layout_;
  ZeroPartition partition_;
  Communicator& dp_;
  int64_t rows_elems_;  // elements of one staging row: the bucket's share of each shard
  Tensor staging_;      // [dp * rows_elems]
};

}  // namespace rwkv::parallel
