// What plain DP's all-reduce and ZeRO-1's reduce-scatter share: a dp
// reduction of the flat gradient (parallel/flat_layout.h), one collective per
// bucket, that can overlap the step's last backward.
//
// Backward produces gradients last tensor first, so the buckets become final
// from the end of the flat space towards its start. The overlap protocol:
//
//   begin_overlap(grads);        before the step's last backward
//   grads_final_from(tensor);    tensors >= tensor are final: starts every
//                                bucket lying wholly in them, last first,
//                                reading the gradients in place
//   finish_overlap();            after backward: starts the rest, waits,
//                                scales by 1/dp
//
// reduce_mean(grads) is the same with nothing started early: the same
// buckets, sums and scaling, so overlapping changes no bit, only when each
// bucket travels. In place needs a store made by zeros_like_flat() (one
// buffer in layout order); any other store is reduced whole at finish_overlap
// through the subclass's packing path.
#pragma once

#include <cstdint>

#include "parallel/comm.h"
#include "parallel/flat_layout.h"
#include "trainer/parameters.h"

namespace rwkv::parallel {

class BucketedReduction {
 public:
  virtual ~BucketedReduction() = default;
  BucketedReduction(const BucketedReduction&) = delete;
  BucketedReduction& operator=(const BucketedReduction&) = delete;

  // grads must stay alive, and untouched but for backward writing the
  // tensors not yet final, until finish_overlap.
  void begin_overlap(ParameterStore& grads);
  void grads_final_from(int tensor);
  void finish_overlap();
  void reduce_mean(ParameterStore& grads) {
    begin_overlap(grads);
    finish_overlap();
  }
  // Buckets started before finish_overlap in the last overlapped step.
  int buckets_started_early() const { return started_early_; }

  virtual int buckets() const = 0;
  const FlatLayout& layout() const { return layout_; }

 protected:
  // name: the class, for errors.
  BucketedReduction(const char* name, const ParameterStore& store, Communicator& dp);

  // The flat offset where bucket starts; increasing in bucket.
  virtual int64_t bucket_begin(int bucket) const = 0;
  // Starts bucket's collective on flat_ (never called when flat_ is undefined).
  virtual void start_bucket(int bucket) = 0;
  // After every started bucket has arrived: the sums -> the mean.
  virtual void scale_reduced() = 0;
  // The whole mean of a store that is not flat (grads_), packing bucket by bucket.
  virtual void reduce_not_flat() = 0;
  // True when the result is the input as it lies (plain DP over one
  // replica): then nothing starts and nothing is scaled.
  virtual bool is_identity() const { return false; }

  const char* name_;
  FlatLayout layout_;
  Communicator& dp_;
  ParameterStore* grads_ = nullptr;  // while overlapping
  Tensor flat_;  // [N] the gradient buffer, undefined when grads_ is not flat

 private:
  void start_buckets_from(int64_t flat_offset);
  int next_unstarted_ = 0;  // buckets [next_unstarted_, buckets()) are started
  int started_early_ = 0;
  bool overlapping_ = false;
};

// The factor of the mean: one rounding of 1/dp to float, multiplied in the
// tensor's dtype, the same on every path.
inline float mean_factor(int dp) { return 1.0f / static_cast<float>(dp); }

}  // namespace rwkv::parallel
