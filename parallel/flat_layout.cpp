#include "parallel/flat_layout.h"

#include <algorithm>

#include "kernels/reduce.h"

namespace rwkv::parallel {

FlatLayout::FlatLayout(const ParameterStore& store) {
  offsets_.push_back(0);
  const auto& entries = store.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const Tensor& t = entries[i].value;
    RWKV_CHECK(t.defined(), "FlatLayout: tensor '", entries[i].name, "' is undefined");
    if (i == 0) {
      dtype_ = t.dtype();
      device_ = t.device();
    }
    RWKV_CHECK(t.dtype() == dtype_ && t.device() == device_, "FlatLayout: tensor '", entries[i].name, "' is ", t.str(),
               " but '", entries[0].name, "' is ", entries[0].value.str(),
               "; flattened buckets need one dtype and one device");
    offsets_.push_back(offsets_.back() + t.numel());
  }
}

FlatLayout::FlatLayout(const std::vector<int64_t>& numels, DType dtype, Device device) : dtype_(dtype), device_(device) {
  offsets_.push_back(0);
  for (int64_t n : numels) {
    RWKV_CHECK(n >= 0, "FlatLayout: negative element count ", n);
    offsets_.push_back(offsets_.back() + n);
  }
}

std::vector<FlatPiece> FlatLayout::pieces(int64_t begin, int64_t end) const {
  RWKV_CHECK(0 <= begin && begin <= end, "FlatLayout::pieces: bad range [", begin, ", ", end, ")");
  std::vector<FlatPiece> out;
  end = std::min(end, numel());
  if (begin >= end) return out;
  // The first tensor whose range ends after `begin`.
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), begin);
  for (int t = static_cast<int>(it - offsets_.begin()) - 1; t < tensors() && offset(t) < end; ++t) {
    const int64_t lo = std::max(begin, offset(t)), hi = std::min(end, offset(t + 1));
    if (hi > lo) out.push_back({t, lo - offset(t), lo, hi - lo});
  }
  return out;
}

bool FlatLayout::matches(const ParameterStore& store) const {
  const auto& entries = store.entries();
  if (static_cast<int>(entries.size()) != tensors()) return false;
  for (int t = 0; t < tensors(); ++t) {
    const Tensor& v = entries[static_cast<size_t>(t)].value;
    if (v.numel() != offset(t + 1) - offset(t) || v.dtype() != dtype_ || !(v.device() == device_)) return false;
  }
  return true;
}

void FlatLayout::expect_matches(const char* op, const ParameterStore& store) const {
  RWKV_CHECK(matches(store), op, ": the store (", store.entries().size(), " tensors, ", store.numel(),
             " elements) does not match the flat layout it was built for (", tensors(), " tensors, ", numel(),
             " elements, ", dtype_name(dtype_), " on ", device_.str(), ")");
}

Tensor flat_slice(const Tensor& t, int64_t offset, int64_t length) {
  return t.view({t.numel()}).slice_rows(offset, length);
}

void pack(const ParameterStore& store, const FlatLayout& layout, int64_t begin, int64_t end, const Tensor& dst) {
  RWKV_CHECK(
      dst.ndim() == 1 && dst.numel() >= end - begin && dst.dtype() == layout.dtype() && dst.device() == layout.device(),
      "pack: staging tensor ", dst.str(), " cannot hold flat [", begin, ", ", end, ") of ", dtype_name(layout.dtype()),
      " on ", layout.device().str());
  int64_t filled = begin;
  for (const FlatPiece& p : layout.pieces(begin, end)) {
    Tensor out = flat_slice(dst, p.flat_offset - begin, p.length);
    out.copy_from(flat_slice(store.entries()[static_cast<size_t>(p.tensor)].value, p.tensor_offset, p.length));
    filled = p.flat_offset + p.length;
  }
  if (filled < end) flat_slice(dst, filled - begin, end - filled).zero_();  // padding past the last tensor
}

void unpack(const Tensor& src, const FlatLayout& layout, int64_t begin, int64_t end, ParameterStore& store) {
  RWKV_CHECK(
      src.ndim() == 1 && src.numel() >= end - begin && src.dtype() == layout.dtype() && src.device() == layout.device(),
      "unpack: staging tensor ", src.str(), " does not hold flat [", begin, ", ", end, ") of ",
      dtype_name(layout.dtype()), " on ", layout.device().str());
  for (const FlatPiece& p : layout.pieces(begin, end)) {
    Tensor out = flat_slice(store.entries()[static_cast<size_t>(p.tensor)].value, p.tensor_offset, p.length);
    out.copy_from(flat_slice(src, p.flat_offset - begin, p.length));
  }
}

void unpack_to_weights(const Tensor& src, const FlatLayout& layout, int64_t begin, int64_t end, ParameterStore& store,
                       const std::vector<Tensor>& copies) {
  RWKV_CHECK(src.ndim() == 1 && src.numel() >= end - begin && src.device() == layout.device(),
             "unpack_to_weights: staging tensor ", src.str(), " does not hold flat [", begin, ", ", end, ") on ",
             layout.device().str());
  RWKV_CHECK(copies.empty() || copies.size() == store.entries().size(), "unpack_to_weights: ", copies.size(),
             " compute copies for ", store.entries().size(), " tensors");
  for (const FlatPiece& p : layout.pieces(begin, end)) {
    const Tensor piece = flat_slice(src, p.flat_offset - begin, p.length);
    const Tensor& master = store.entries()[static_cast<size_t>(p.tensor)].value;
    const Tensor copy = copies.empty() ? Tensor() : copies[static_cast<size_t>(p.tensor)];
    const std::string& name = store.entries()[static_cast<size_t>(p.tensor)].name;
    RWKV_CHECK(master.defined() || copy.defined(), "unpack_to_weights: tensor '", name,
               "' has neither a master nor a compute copy");
    // A master takes its own dtype only (a bf16 bucket must not round it).
    RWKV_CHECK(!master.defined() || master.dtype() == src.dtype(), "unpack_to_weights: the ", dtype_name(src.dtype()),
               " staging cannot hold the ", dtype_name(master.dtype()), " master of '", name, "'");
    for (const Tensor& target : {master, copy}) {
      if (!target.defined()) continue;
      Tensor out = flat_slice(target, p.tensor_offset, p.length);
      if (out.dtype() == piece.dtype()) {
        out.copy_from(piece);
      } else {
        cast(piece, out);
      }
    }
  }
}

}  // namespace rwkv::parallel
