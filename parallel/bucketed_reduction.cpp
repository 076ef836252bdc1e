#include "parallel/bucketed_reduction.h"

namespace rwkv::parallel {

BucketedReduction::BucketedReduction(const char* name, const ParameterStore& store, Communicator& dp,
                                     std::optional<DType> wire)
    : name_(name), layout_(store), dp_(dp), wire_(wire.value_or(layout_.dtype())) {
  RWKV_CHECK(wire_ == layout_.dtype() || (wire_ == DType::BF16 && layout_.dtype() == DType::F32), name_,
             ": cannot reduce ", dtype_name(layout_.dtype()), " gradients over a ", dtype_name(wire_),
             " wire\n  ---> HINT: the wire is the gradients' own dtype, or bf16 over f32 gradients");
}

BucketedReduction::WireSlot& BucketedReduction::take_wire_slot(int bucket, int64_t numel) {
  if (wire_slots_.empty()) wire_slots_.resize(kWireSlots);
  WireSlot& slot = wire_slots_[next_wire_slot_];
  next_wire_slot_ = (next_wire_slot_ + 1) % wire_slots_.size();
  if (slot.bucket >= 0) {
    dp_.wait_for(slot.ticket);
    land_wire(slot.bucket, slot.buffer);
    slot.bucket = -1;
  }
  if (!slot.buffer.defined() || slot.buffer.numel() < numel)
    slot.buffer = Tensor::empty({numel}, wire_, layout_.device());
  slot.bucket = bucket;
  slot.ticket = 0;
  return slot;
}

void BucketedReduction::land_wire_slots() {
  // In the order they were taken: the oldest bucket first.
  for (size_t i = 0; i < wire_slots_.size(); ++i) {
    WireSlot& slot = wire_slots_[(next_wire_slot_ + i) % wire_slots_.size()];
    if (slot.bucket < 0) continue;
    land_wire(slot.bucket, slot.buffer);
    slot.bucket = -1;
  }
}

void BucketedReduction::begin_overlap(ParameterStore& grads) {
  RWKV_CHECK(!overlapping_, name_, "::begin_overlap: the previous step's finish_overlap is missing");
  layout_.expect_matches(name_, grads);
  overlapping_ = true;
  started_early_ = 0;
  next_unstarted_ = buckets();
  grads_ = &grads;
  // In place only when the store is one buffer in layout order.
  const Tensor& flat = grads.flat();
  flat_ = flat.defined() && flat.numel() == layout_.numel() ? flat : Tensor();
}

void BucketedReduction::start_buckets_from(int64_t flat_offset) {
  while (next_unstarted_ > 0 && bucket_begin(next_unstarted_ - 1) >= flat_offset) start_bucket(--next_unstarted_);
}

void BucketedReduction::grads_final_from(int tensor) {
  RWKV_CHECK(overlapping_, name_, "::grads_final_from outside begin_overlap/finish_overlap");
  RWKV_CHECK(tensor >= 0 && tensor <= layout_.tensors(), name_, "::grads_final_from: tensor ", tensor, " of ",
             layout_.tensors());
  // Not flat: every bucket is packed, so they all wait for finish_overlap.
  if (!flat_.defined() || is_identity()) return;
  const int before = next_unstarted_;
  start_buckets_from(tensor == layout_.tensors() ? layout_.numel() : layout_.offset(tensor));
  started_early_ += before - next_unstarted_;
}

void BucketedReduction::finish_overlap() {
  RWKV_CHECK(overlapping_, name_, "::finish_overlap without begin_overlap");
  overlapping_ = false;
  if (!is_identity() && flat_.defined()) {
    start_buckets_from(0);
    dp_.wait_started();
    land_wire_slots();
    scale_reduced();
  } else if (!is_identity()) {
    reduce_not_flat();
  }
  grads_ = nullptr;
  flat_ = Tensor();
}

}  // namespace rwkv::parallel
