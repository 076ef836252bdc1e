#include "trainer/parameters.h"

namespace rwkv {

Tensor ParameterStore::add(const std::string& name, const Shape& shape, DType dtype, bool decay,
                           float lr_multiplier, Device device) {
  RWKV_CHECK(!contains(name), "parameter '", name, "' declared twice");
  NamedTensor entry;
  entry.name = name;
  entry.value = Tensor::zeros(shape, dtype, device);
  entry.decay = decay;
  entry.lr_multiplier = lr_multiplier;
  entries_.push_back(std::move(entry));
  return entries_.back().value;
}

bool ParameterStore::contains(const std::string& name) const {
  for (const NamedTensor& e : entries_)
    if (e.name == name) return true;
  return false;
}

const Tensor& ParameterStore::at(const std::string& name) const {
  for (const NamedTensor& e : entries_)
    if (e.name == name) return e.value;
  RWKV_FAIL("no parameter named '", name, "'");
}

NamedTensor& ParameterStore::entry(const std::string& name) {
  for (NamedTensor& e : entries_)
    if (e.name == name) return e;
  RWKV_FAIL("no parameter named '", name, "'");
}

ParameterStore ParameterStore::zeros_like() const {
  ParameterStore out;
  for (const NamedTensor& e : entries_) {
    NamedTensor copy = e;  // name, flags and placement; new storage below
    copy.value = Tensor::zeros(e.value.shape(), e.value.dtype(), e.value.device());
    out.entries_.push_back(std::move(copy));
  }
  return out;
}

ParameterStore ParameterStore::zeros_like_flat() const {
  ParameterStore out;
  if (entries_.empty()) return out;
  const DType dtype = entries_[0].value.dtype();
  const Device device = entries_[0].value.device();
  for (const NamedTensor& e : entries_)
    RWKV_CHECK(e.value.dtype() == dtype && e.value.device() == device, "zeros_like_flat: '", e.name, "' is ",
               e.value.str(), " but '", entries_[0].name, "' is ", entries_[0].value.str(),
               "; one flat buffer holds one dtype on one device");
  out.flat_ = Tensor::zeros({numel()}, dtype, device);
  int64_t offset = 0;
  for (const NamedTensor& e : entries_) {
    NamedTensor copy = e;
    copy.value = out.flat_.slice_rows(offset, e.value.numel()).view(e.value.shape());
    offset += e.value.numel();
    out.entries_.push_back(std::move(copy));
  }
  return out;
}

void ParameterStore::zero_all() {
  if (flat_.defined()) {
    flat_.zero_();  // one memset for the whole store
    return;
  }
  for (NamedTensor& e : entries_) e.value.zero_();
}

int64_t ParameterStore::numel() const {
  int64_t n = 0;
  for (const NamedTensor& e : entries_) n += e.value.numel();
  return n;
}

}  // namespace rwkv
