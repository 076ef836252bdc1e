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
  Tensor value;
  bool decay = false;   // AdamW weight decay applies (2-D weights only in the reference)
  float lr_multiplier = 1.0f;
};

class ParameterStore {
 public:
  Tensor add(const std::string& name, const Shape& shape, DType dtype, bool decay, float lr_multiplier,
             Device device = Device::cpu());
  const Tensor& at(const std::string& name) const;  // throws naming the missing tensor
  bool contains(const std::string& name) const;
  const std::vector<NamedTensor>& entries() const { return entries_; }
  std::vector<NamedTensor>& entries() { return entries_; }
  // A store of zeros with the same names, shapes and dtypes (the gradients).
  ParameterStore zeros_like() const;
  void zero_all();
  int64_t numel() const;

 private:
  std::vector<NamedTensor> entries_;
};

}  // namespace rwkv
