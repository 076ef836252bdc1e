// The tensors of a ParameterStore laid end to end, in store order: one flat
// index space shared by gradient bucketing and the ZeRO-1 partition.
//
//   store:  emb.weight [V, C] | blocks.0.ln0.weight [C] | ... | head.weight [V, C]
//   flat:   [0, VC)           | [VC, VC + C)            | ... | [N - VC, N)
//
// Nothing is copied to build it: a flat range maps to pieces of tensors, and
// pack/unpack move a range between the store and a 1-D staging tensor.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "trainer/parameters.h"

namespace rwkv::parallel {

// Elements [tensor_offset, tensor_offset + length) of the store's tensor
// `tensor` (in its row-major order) sit at flat [flat_offset, flat_offset + length).
struct FlatPiece {
  int tensor = 0;
  int64_t tensor_offset = 0;
  int64_t flat_offset = 0;
  int64_t length = 0;
  bool operator==(const FlatPiece&) const = default;
};

class FlatLayout {
 public:
  // Every tensor of the store must share one dtype and one device (the flat
  // staging buffers have one); throws naming the first one that differs.
  explicit FlatLayout(const ParameterStore& store);
  // The layout of tensors with these element counts, without any tensor (the
  // dry run lays out a 14B model's shapes this way).
  FlatLayout(const std::vector<int64_t>& numels, DType dtype, Device device);

  int64_t numel() const { return offsets_.back(); }
  int tensors() const { return static_cast<int>(offsets_.size()) - 1; }
  int64_t offset(int tensor) const { return offsets_[static_cast<size_t>(tensor)]; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  // The pieces of the tensors covering flat [begin, end), in flat order;
  // positions at or past numel() (padding) belong to no tensor.
  std::vector<FlatPiece> pieces(int64_t begin, int64_t end) const;

  // True when `store` has the same tensor count, element counts, dtype and
  // device (gradients and parameters share one layout).
  bool matches(const ParameterStore& store) const;
  void expect_matches(const char* op, const ParameterStore& store) const;

 private:
  std::vector<int64_t> offsets_;  // [tensors + 1]: prefix sums of the element counts
  DType dtype_ = DType::F32;
  Device device_;
};

// A tensor's elements [offset, offset + length) as a 1-D view sharing its memory.
Tensor flat_slice(const Tensor& t, int64_t offset, int64_t length);

// dst[0, end - begin) <- the store's flat [begin, end); positions past the
// store's end are zeroed. dst: 1-D, at least end - begin elements, the layout's dtype and device.
void pack(const ParameterStore& store, const FlatLayout& layout, int64_t begin, int64_t end, const Tensor& dst);
// The store's flat [begin, end) <- src[0, end - begin); padding positions are skipped.
void unpack(const Tensor& src, const FlatLayout& layout, int64_t begin, int64_t end, ParameterStore& store);
// The same into whichever of each tensor's two forms exist: its master
// (store's value, skipped where undefined: ZeRO-1 with sharded masters) and
// its compute copy (copies[tensor], bf16 or f32, skipped where undefined or
// when copies is empty), converted to the target's dtype. src may be in the
// copies' dtype (ZeRO-1's bf16 buckets) when no master of the range is defined.
void unpack_to_weights(const Tensor& src, const FlatLayout& layout, int64_t begin, int64_t end, ParameterStore& store,
                       const std::vector<Tensor>& copies);

}  // namespace rwkv::parallel
