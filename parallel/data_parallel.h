// Data parallelism over a dp group: each of the dp replicas computes the
// gradient of its own micro-batches, and the replicas must agree on
//
//   g = (1/dp) sum_{d=0}^{dp-1} g_d
//
// before the optimizer step. Two ways, both over the flat layout of the
// gradients (parallel/flat_layout.h), both independent of the model class,
// both one collective per bucket that can overlap backward
// (parallel/bucketed_reduction.h):
//
// 1. GradAllReducer (plain DP, replicated optimizer): the flat gradient is cut
//    into buckets of bucket_bytes (25 MiB by default, as PyTorch DDP), each
//    bucket is packed into one staging buffer, all-reduced, scaled by 1/dp and
//    unpacked. Few large messages instead of one per tensor; memory: one bucket.
//
// 2. ZeRO-1 (Rajbhandari et al. 2020, stage 1: optimizer state sharded),
//    in the bucketed layout of Megatron-LM's distributed optimizer: the flat
//    space is cut into buckets of about bucket_bytes, each bucket into dp equal
//    chunks (multiples of `align`), and rank d owns chunk d of every bucket.
//
//      flat:   | bucket 0: r0 | r1 | .. | r(dp-1) | bucket 1: r0 | r1 | .. | .. | last bucket, padded |
//      shard of rank d [S]: its chunk of bucket 0, of bucket 1, ...
//      step:   reduce-scatter each bucket -> each rank: averaged gradient of its chunks
//              AdamW on the shard only (m, v: S elements instead of N)
//              all-gather each bucket's chunks -> every rank: all parameters
//
//    A bucket is one reduce-scatter whose input is the flat gradient itself,
//    so it can start as soon as backward has finished that bucket's tensors
//    (the overlap of plain DP); one contiguous shard per rank could not start
//    before backward reached its start.
//    Per step and rank this sends (dp-1) S e + (dp-1) S e bytes, the same as
//    the all-reduce of plain DP, while the optimizer state shrinks dp-fold.
//
// Bit-identical results: the communicators sum every element in rank order
// whatever the chunking (comm.h), and the scaling is one multiplication by
// (float)(1/dp), so the bucket size does not change a single bit, and ZeRO-1's
// shard of the averaged gradient equals the same elements of GradAllReducer's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "parallel/bucketed_reduction.h"
#include "parallel/comm.h"
#include "parallel/flat_layout.h"
#include "trainer/parameters.h"

namespace rwkv::parallel {

inline constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;  // 25 MiB
// ZeRO-1 chunk alignment in elements (64 f32 = 256 bytes).
inline constexpr int64_t kZeroAlign = 64;

// Plain DP: the average of the whole gradient store, all-reduced in place
// bucket by bucket (begin_overlap / grads_final_from / finish_overlap /
// reduce_mean of BucketedReduction), or packed into one staging bucket at a
// time (all_reduce_mean, and any store that is not flat).
class GradAllReducer final : public BucketedReduction {
 public:
  // dp: the data-parallel group; grads: the gradient store whose layout every
  // later call must match.
  // wire: the dtype buckets travel in (bucketed_reduction.h): the
  // gradients' own by default, or bf16 over f32 gradients. bucket_bytes
  // counts the gradients' dtype either way.
  GradAllReducer(const ParameterStore& grads, Communicator& dp, int64_t bucket_bytes = kDefaultBucketBytes,
                 std::optional<DType> wire = std::nullopt);

  // grads <- the average over the dp group, bucket by bucket through the
  // staging buffer (any store of the layout, flat or not).
  void all_reduce_mean(ParameterStore& grads);

  int buckets() const override { return static_cast<int>((layout_.numel() + bucket_elems_ - 1) / bucket_elems_); }
  int64_t bucket_elems() const { return bucket_elems_; }
  // The bytes this rank sends per all_reduce_mean: sum over buckets of the
  // all-reduce formula of comm_volume.h.
  uint64_t bytes_sent_per_call() const;

 private:
  int64_t bucket_begin(int bucket) const override { return int64_t{bucket} * bucket_elems_; }
  void start_bucket(int bucket) override;
  void scale_reduced() override;
  void reduce_not_flat() override { all_reduce_mean(*grads_); }
  bool is_identity() const override { return dp_.size() == 1; }  // the mean of one replica is itself
  void land_wire(int bucket, const Tensor& slot) override;
  int64_t bucket_numel(int bucket) const { return std::min(layout_.numel(), bucket_begin(bucket) + bucket_elems_) - bucket_begin(bucket); }

  int64_t bucket_elems_;
  Tensor staging_;  // [bucket_elems] on the gradients' device
};

// A piece of a rank's ZeRO-1 shard: tensor elements (FlatPiece) and where
// they sit in the shard's flat buffers (gradient shard, AdamW m and v).
struct ShardPiece : FlatPiece {
  int64_t shard_offset = 0;
  bool operator==(const ShardPiece&) const = default;
};

// Which flat elements each dp rank owns under ZeRO-1 (the bucketed layout above).
class ZeroPartition {
 public:
  // bucket_elems: the wanted bucket size in elements, rounded up to a
  // multiple of dp * align; one bucket when it is at least N (then rank d
  // owns the contiguous range [d S, (d+1) S)). align: chunk sizes (and so
  // chunk starts) are multiples of it, in elements (64 f32 = 256 bytes:
  // whole cache lines and GPU memory transactions). The last bucket is
  // shorter: the rest of N, rounded up to dp * align.
  ZeroPartition(const FlatLayout& layout, int dp, int64_t align, int64_t bucket_elems);

  int dp() const { return dp_; }
  int64_t numel() const { return numel_; }               // N: the parameters
  int64_t shard_numel() const { return shard_; }         // S: the sum of one rank's chunks
  int64_t padded_numel() const { return shard_ * dp_; }  // dp S >= N
  int buckets() const { return buckets_; }
  int64_t bucket_begin(int bucket) const { return int64_t{bucket} * bucket_; }  // flat offset
  int64_t chunk_numel(int bucket) const { return bucket + 1 < buckets_ ? bucket_ / dp_ : last_chunk_; }
  int64_t bucket_numel(int bucket) const { return chunk_numel(bucket) * dp_; }
  // Where bucket's chunks start in every rank's shard.
  int64_t shard_offset(int bucket) const { return int64_t{bucket} * (bucket_ / dp_); }
  // The tensor pieces of rank's shard in shard order (padding has none):
  // what that rank updates and saves. Each lies inside one chunk.
  const std::vector<ShardPiece>& pieces(int rank) const { return pieces_[static_cast<size_t>(rank)]; }

 private:
  int dp_;
  int64_t numel_, shard_, bucket_, last_chunk_;
  int buckets_;
  std::vector<std::vector<ShardPiece>> pieces_;
};

// The bucket size in elements of dtype that bucket_bytes means (at least 1).
int64_t bucket_elems_for(int64_t bucket_bytes, DType dtype);

// ZeRO-1's two collectives, one reduce-scatter and one all-gather per bucket
// of the partition. The reduce-scatter (BucketedReduction's protocol) writes
// this rank's shard of the dp-averaged flat gradient into grad_shard(); with
// a store made by zeros_like_flat() a bucket reads the gradients in place,
// otherwise (and for the padded last bucket) it is packed into a staging
// buffer of one bucket.
class ZeroOneSync final : public BucketedReduction {
 public:
  // wire: as GradAllReducer's; the partition (and so the checkpoints'
  // shards) does not depend on it.
  ZeroOneSync(const ParameterStore& params, Communicator& dp, int64_t bucket_bytes = kDefaultBucketBytes,
              int64_t align = kZeroAlign, std::optional<DType> wire = std::nullopt);

  const ZeroPartition& partition() const { return partition_; }

  // [S] this rank's shard of the last reduce_mean / finish_overlap (zeros
  // over the padding), in the parameters' dtype and device.
  Tensor& grad_shard() { return shard_; }
  const Tensor& grad_shard() const { return shard_; }

  // Every rank's weights <- the owners' master values of every chunk: each
  // rank's master_shard [S] (ShardedAdamW::master_shard(), updated there)
  // goes to every rank, into each tensor's master in params where it is
  // defined and into its compute copy (copies, as Rwkv4Model::compute_copies;
  // empty for none) where that is, rounded to the copy's dtype. A bucket
  // whose tensors all exist only as bf16 copies (masters released) is
  // rounded by its owners and gathered in bf16: half the bytes, the same
  // bits in the copies (bf16_gather_buckets).
  void all_gather_params(const Tensor& master_shard, ParameterStore& params, const std::vector<Tensor>& copies = {});

  // all_gather_params, overlapped with the next forward: the bf16 buckets
  // are gathered in place into copies_flat ([numel] bf16: the one buffer the
  // compute copies are views of, each at its tensor's flat offset, as
  // Rwkv4Model::compute_copies_flat()) and left in flight; the compute stream
  // waits for each only where forward first reads it (wait_gathered). The
  // other buckets (an f32 master among their tensors, or padding past the
  // store's end) go first, through staging, and are complete on return.
  // With copies that are not views of copies_flat it is all_gather_params.
  void start_all_gather_params(const Tensor& master_shard, ParameterStore& params, const std::vector<Tensor>& copies,
                               const Tensor& copies_flat);
  // Before reading the weights of flat [0, flat_end): the compute stream
  // waits for the gathers in flight of the buckets beginning before
  // flat_end (one wait: the communication stream runs in order). Waits
  // advance in flat order, as forward reads the weights.
  void wait_gathered(int64_t flat_end);
  // Buckets started by start_all_gather_params and not yet waited for.
  int gathers_in_flight() const { return in_flight_count_; }

  int buckets() const override { return partition_.buckets(); }
  // Bytes this rank sends per reduce_mean, and per all_gather_params.
  uint64_t reduce_scatter_bytes_per_call() const;
  uint64_t all_gather_bytes_per_call() const;

 private:
  int64_t bucket_begin(int bucket) const override { return partition_.bucket_begin(bucket); }
  // Starts bucket's reduce-scatter from the flat gradient (or its packed copy).
  void start_bucket(int bucket) override;
  void scale_reduced() override;
  void reduce_not_flat() override;
  void land_wire(int bucket, const Tensor& slot) override;

  ZeroPartition partition_;
  Tensor shard_;    // [S] the reduced gradient shard
  Tensor staging_;       // [largest bucket]: packed buckets and all-gathered parameters
  Tensor staging_bf16_;  // [largest bucket] bf16: buckets gathered in bf16 (allocated on first use)
  // all_gather_params: the tensors that exist only as bf16 copies, and the
  // buckets gathered in bf16 for them (bf16_gather_buckets).
  std::vector<bool> bf16_only_, in_bf16_;
  // start_all_gather_params: per bucket, whether its gather is in flight and
  // its ticket; buckets before first_in_flight_ have all been waited for.
  std::vector<bool> in_flight_;
  std::vector<Communicator::Ticket> tickets_;
  int first_in_flight_ = 0, in_flight_count_ = 0;

  // Gathers bucket b through staging (f32, or bf16 for a bf16 bucket) and unpacks it; complete on return.
  void gather_through_staging(int b, const Tensor& master_shard, ParameterStore& params, const std::vector<Tensor>& copies);
  // True when every copy of a bf16-only tensor is a view of copies_flat at its flat offset.
  bool copies_view_flat(const std::vector<Tensor>& copies, const Tensor& copies_flat) const;
};

// Which buckets of the partition ZeroOneSync::all_gather_params gathers in
// bf16: those holding elements of bf16_only tensors ([tensors]) alone.
std::vector<bool> bf16_gather_buckets(const ZeroPartition& partition, const FlatLayout& layout,
                                      const std::vector<bool>& bf16_only);

}  // namespace rwkv::parallel
