#include "parallel/bucketed_reduction.h"

namespace rwkv::parallel {

BucketedReduction::BucketedReduction(const char* name, const ParameterStore& store, Communicator& dp,
                                     std::optional<DType> wire)
    : name_(name), layout_(store), dp_(dp), wire_(wire.value_or(layout_.dtype())) {
  RWKV_CHECK(wire_ == layout_.dtype() || (wire_ == DType::BF16 && layout_.dtype() == DType::F32), name_,
             ": cannot reduce ", dtype_name(layout_.dtype()), " gradients over a ", dtype_name(wire_),
             " wire\n  ---> HINT: the wire is the gradients' own dtype, or bf16 over f32 gradients");
}

void BucketedReduction::allocate_wire_slots(int64_t slot_numel) {
  if (wire_slots_.empty()) {
    wire_slots_.resize(kWireSlots);
    for (WireSlot& slot : wire_slots_) slot.buffer = Tensor::empty({slot_numel}, wire_, layout_.device());
  }
  RWKV_CHECK(wire_slots_[0].buffer.numel() == slot_numel, name_, ": wire slots of ", wire_slots_[0].buffer.numel(),
             " elements asked for as ", slot_numel);
}

BucketedReduction::WireSlot& BucketedReduction::take_wire_slot(int bucket, int64_t slot_numel) {
  allocate_wire_slots(slot_numel);
  WireSlot& slot = wire_slots_[next_wire_slot_];
  next_wire_slot_ = (next_wire_slot_ + 1) % wire_slots_.size();
  if (slot.bucket >= 0) {
    dp_.wait_for(slot.ticket);
    land_wire(slot.bucket, slot.buffer);
  }
  slot.bucket = bucket;
  slot.ticket = 0;
  return slot;
}

const Tensor& BucketedReduction::idle_wire_buffer(int64_t slot_numel) {
  allocate_wire_slots(slot_numel);
  for (const WireSlot& slot : wire_slots_)
    RWKV_CHECK(slot.bucket < 0, name_, ": a blocking reduction while bucket ", slot.bucket, " is in flight");
  return wire_slots_[0].buffer;
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
