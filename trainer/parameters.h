// Named parameter tensors in the reference state-dict order, with the two
// per-tensor facts the optimizer needs (weight decay or not, lr multiplier).
// Gradients live in a second store with the same names and shapes.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv {

struct NamedTensor {
  std::string name;     // reference name, e.g. "blocks.3.att.key.weight"
  Tensor value;         // this rank's slice
  bool decay = false;   // AdamW weight decay applies (2-D weights only in the reference)
  float lr_multiplier = 1.0f;
  // Where the slice sits in the global tensor (checkpoints, resharding).
  // Empty: the slice is the whole tensor. Rows of `value` past the global
  // shape (vocabulary padding) are not part of the global tensor.
  Shape global_shape, global_offset;
  // Tensor parallelism: the same values on every tp rank (LayerNorms,
  // time_mix), and whether each rank's gradient is only a partial sum that
  // must be added over the tp group (time_mix: their gradients come from
  // partial input gradients).
  bool tp_replicated = false;
  bool tp_partial_grad = false;

  const Shape& global() const { return global_shape.empty() ? value.shape() : global_shape; }
  Shape offset() const { return global_offset.empty() ? Shape(value.shape().size(), 0) : global_offset; }
};

class ParameterStore {
 public:
  Tensor add(const std::string& name, const Shape& shape, DType dtype, bool decay, float lr_multiplier,
             Device device = Device::cpu());
  NamedTensor& entry(const std::string& name);  // throws naming the missing tensor
  const Tensor& at(const std::string& name) const;  // throws naming the missing tensor
  bool contains(const std::string& name) const;
  const std::vector<NamedTensor>& entries() const { return entries_; }
  std::vector<NamedTensor>& entries() { return entries_; }
  // A store of zeros with the same names, shapes and dtypes (the gradients).
  ParameterStore zeros_like() const;
  // The same, with every tensor a view into one contiguous buffer, in entry
  // order (flat(): [numel]). Gradients are kept this way so a data-parallel
  // bucket is a plain view of them: reduced in place, with no staging copy,
  // while backward goes on (parallel/data_parallel.h). One dtype and device.
  ParameterStore zeros_like_flat() const;
  // The buffer behind a zeros_like_flat() store (undefined for any other).
  const Tensor& flat() const { return flat_; }
  void zero_all();
  int64_t numel() const;

 private:
  std::vector<NamedTensor> entries_;
  Tensor flat_;  // zeros_like_flat(): the buffer every entry views
};

}  // namespace rwkv
