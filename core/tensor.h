// A small tensor: contiguous row-major memory on one device, a dtype and a
// shape. Views (view, slice_rows) share the storage. No autograd and no
// strides: every layer states its buffers' shapes and the kernels check them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace rwkv {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    Tensor t = empty(shape, DTypeOf<T>::value);
    RWKV_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "Tensor::from_vector: ", values.size(),
               " values for shape ", shape_str(shape));
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_cpu() const { return device_.is_cpu(); }
  bool is_cuda() const { return device_.is_cuda(); }

  void* raw_data() const;
  template <typename T>
  T* data() const {
    RWKV_CHECK(DTypeOf<T>::value == dtype_, "tensor ", str(), " accessed as ", dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(raw_data());
  }

  // Same memory, another shape with the same element count.
  Tensor view(const Shape& shape) const;
  // Rows [start, start + count) along dimension 0, sharing memory.
  Tensor slice_rows(int64_t start, int64_t count) const;

  Tensor to(Device device) const;        // copy to another device (or a clone on the same one)
  Tensor to_dtype(DType dtype) const;    // CPU conversion between f32, f64 and bf16
  Tensor clone() const { return to(device_); }
  void copy_from(const Tensor& src);     // same shape and dtype, any devices
  void zero_();

  template <typename T>
  std::vector<T> to_vector() const {
    Tensor host = is_cpu() ? *this : to(Device::cpu());
    const T* p = host.data<T>();
    return std::vector<T>(p, p + numel());
  }

  std::string str() const;  // e.g. "f32[2, 3] cpu"

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_;
};

// Argument checks shared by every op. They throw rwkv::Error naming the op, the
// argument, what it is and what was expected, e.g.
//   "wkv4_forward: k has shape [2, 8, 16], expected [2, 8, 32] ([B, T, C])".
void expect_defined(const char* op, const char* name, const Tensor& t);
void expect_shape(const char* op, const char* name, const Tensor& t, const Shape& shape, const char* dims_meaning);
void expect_ndim(const char* op, const char* name, const Tensor& t, int ndim, const char* dims_meaning);
void expect_dtype(const char* op, const char* name, const Tensor& t, DType dtype);
void expect_same_dtype(const char* op, const char* name, const Tensor& t, const Tensor& reference);
void expect_device(const char* op, const char* name, const Tensor& t, Device device);

}  // namespace rwkv
