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
//
// The wire: by default a bucket travels in the gradients' dtype. A bf16 wire
// over f32 gradients (parallel.grad_reduce_dtype: bf16, as DeepSpeed's bf16
// runs reduce) halves the bytes: each bucket is rounded into a bf16 slot,
// summed there (MPI: in f32 in rank order, rounded once; NCCL: its own
// rounding per hop) and landed back in f32 before the mean's scaling. The
// rounding is per element, so the bucket size and the overlap still change
// no bit. The slots are a ring of kWireSlots buckets: a bucket reuses the
// slot of the bucket kWireSlots before it once that one has arrived (the
// compute stream waits for its ticket, then lands it), so the wire costs
// kWireSlots buckets of bf16 memory, not a bf16 copy of every gradient.
// With one replica nothing travels and nothing is rounded.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

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
  // The dtype the buckets travel in: the layout's, or bf16 (see above).
  DType wire_dtype() const { return wire_; }

  static constexpr int kWireSlots = 4;

 protected:
  // name: the class, for errors. wire: the layout's dtype (the default), or
  // BF16 over F32 gradients (anything else is refused, naming the pair).
  BucketedReduction(const char* name, const ParameterStore& store, Communicator& dp, std::optional<DType> wire);

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

  // True when buckets are rounded to a bf16 wire: a bf16 wire and more than
  // one replica.
  bool wire_rounds() const { return wire_ != layout_.dtype() && dp_.size() > 1; }
  // The wire slot for bucket (ring order: call in the order the buckets
  // start). The slot's previous bucket is landed first (the compute stream
  // waits for its ticket). Set the returned slot's ticket once its
  // collective has started. slot_numel: the largest bucket, the same on
  // every call (the slots are allocated on first use).
  struct WireSlot {
    Tensor buffer;                  // [slot_numel] bf16
    int bucket = -1;                // the bucket in flight in it, -1 for none
    Communicator::Ticket ticket = 0;
  };
  WireSlot& take_wire_slot(int bucket, int64_t slot_numel);
  // A wire buffer for a blocking collective (the packing paths); no bucket
  // may be in flight.
  const Tensor& idle_wire_buffer(int64_t slot_numel);
  // Lands every bucket still in a slot; after dp_.wait_started().
  void land_wire_slots();
  // The reduced bf16 contents of bucket's slot -> its f32 destination (not scaled).
  virtual void land_wire(int bucket, const Tensor& slot) = 0;
  // The bytes of one element on the wire.
  int64_t wire_elem_bytes() const { return static_cast<int64_t>(dtype_size(wire_rounds() ? wire_ : layout_.dtype())); }

  const char* name_;
  FlatLayout layout_;
  Communicator& dp_;
  DType wire_;
  ParameterStore* grads_ = nullptr;  // while overlapping
  Tensor flat_;  // [N] the gradient buffer, undefined when grads_ is not flat

 private:
  void start_buckets_from(int64_t flat_offset);
  int next_unstarted_ = 0;  // buckets [next_unstarted_, buckets()) are started
  std::vector<WireSlot> wire_slots_;  // [kWireSlots], allocated on first use
  void allocate_wire_slots(int64_t slot_numel);
  size_t next_wire_slot_ = 0;
  int started_early_ = 0;
  bool overlapping_ = false;
};

// The factor of the mean: one rounding of 1/dp to float, multiplied in the
// tensor's dtype, the same on every path.
inline float mean_factor(int dp) { return 1.0f / static_cast<float>(dp); }

}  // namespace rwkv::parallel
