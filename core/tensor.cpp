#include "core/tensor.h"

#include <sstream>

namespace rwkv {

struct Tensor::Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device;
  Storage(size_t n, Device d) : ptr(device_alloc(d, n)), bytes(n), device(d) {}
  ~Storage() { device_free(device, ptr); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) RWKV_CHECK(d >= 0, "Tensor::empty: negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  RWKV_CHECK(j >= 0 && j < n, "tensor ", str(), " has no dimension ", i);
  return shape_[j];
}

void* Tensor::raw_data() const {
  RWKV_CHECK(defined(), "access to an undefined tensor");
  return static_cast<char*>(storage_->ptr) + offset_bytes_;
}

Tensor Tensor::view(const Shape& shape) const {
  RWKV_CHECK(shape_numel(shape) == numel(), "cannot view ", str(), " as ", shape_str(shape),
             ": element counts differ");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice_rows(int64_t start, int64_t count) const {
  RWKV_CHECK(ndim() >= 1, "slice_rows of a 0-d tensor");
  RWKV_CHECK(start >= 0 && count >= 0 && start + count <= shape_[0], "slice_rows(", start, ", ", count,
             ") out of range for ", str());
  Tensor t = *this;
  t.shape_[0] = count;
  t.offset_bytes_ += static_cast<size_t>(start) * (nbytes() / static_cast<size_t>(shape_[0] ? shape_[0] : 1));
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

namespace {
template <typename Dst, typename Src>
void convert(const Src* src, Dst* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Dst, bf16>) {
      dst[i] = float_to_bf16(static_cast<float>(load_as_float(src[i])));
    } else {
      dst[i] = static_cast<Dst>(load_as_float(src[i]));
    }
  }
}

template <typename Src>
void convert_to(const Src* src, const Tensor& out) {
  switch (out.dtype()) {
    case DType::F32: convert(src, out.data<float>(), out.numel()); break;
    case DType::F64: convert(src, out.data<double>(), out.numel()); break;
    case DType::BF16: convert(src, out.data<bf16>(), out.numel()); break;
    default: RWKV_FAIL("to_dtype: cannot convert to ", dtype_name(out.dtype()));
  }
}
}  // namespace

Tensor Tensor::to_dtype(DType dtype) const {
  RWKV_CHECK(is_cpu(), "to_dtype works on CPU tensors; copy ", str(), " to the CPU first");
  if (dtype == dtype_) return clone();
  Tensor out = empty(shape_, dtype, device_);
  switch (dtype_) {
    case DType::F32: convert_to(data<float>(), out); break;
    case DType::F64: convert_to(data<double>(), out); break;
    case DType::BF16: convert_to(data<bf16>(), out); break;
    default: RWKV_FAIL("to_dtype: cannot convert from ", dtype_name(dtype_));
  }
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  RWKV_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: source ", src.str(),
             " does not match destination ", str());
  device_copy(device_, raw_data(), src.device_, src.raw_data(), nbytes());
}

void Tensor::zero_() { device_memset_zero(device_, raw_data(), nbytes()); }

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return str_cat(dtype_name(dtype_), shape_str(shape_), " ", device_.str());
}

void expect_defined(const char* op, const char* name, const Tensor& t) {
  RWKV_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
}

void expect_shape(const char* op, const char* name, const Tensor& t, const Shape& shape, const char* dims_meaning) {
  expect_defined(op, name, t);
  RWKV_CHECK(t.shape() == shape, op, ": ", name, " has shape ", shape_str(t.shape()), ", expected ",
             shape_str(shape), " (", dims_meaning, ")");
}

void expect_ndim(const char* op, const char* name, const Tensor& t, int ndim, const char* dims_meaning) {
  expect_defined(op, name, t);
  RWKV_CHECK(t.ndim() == ndim, op, ": ", name, " has shape ", shape_str(t.shape()), ", expected ", ndim,
             " dimensions (", dims_meaning, ")");
}

void expect_dtype(const char* op, const char* name, const Tensor& t, DType dtype) {
  expect_defined(op, name, t);
  RWKV_CHECK(t.dtype() == dtype, op, ": ", name, " has dtype ", dtype_name(t.dtype()), ", expected ",
             dtype_name(dtype));
}

void expect_same_dtype(const char* op, const char* name, const Tensor& t, const Tensor& reference) {
  expect_dtype(op, name, t, reference.dtype());
}

void expect_device(const char* op, const char* name, const Tensor& t, Device device) {
  expect_defined(op, name, t);
  RWKV_CHECK(t.device() == device, op, ": ", name, " is on ", t.device().str(), ", expected ", device.str(),
             " like the other arguments");
}

}  // namespace rwkv
