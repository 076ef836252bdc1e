// Helpers of the CUDA kernel tests: every test runs the public op on CPU
// tensors (the reference, in f32) and on CUDA copies of the same inputs (f32
// or bf16 storage), then compares. Without a GPU each test skips cleanly.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "tests/unit/test_util.h"

// First statement of every GPU test.
#define RWKV_REQUIRE_GPU()                                                               \
  do {                                                                                   \
    if (!::rwkv::cuda_available()) GTEST_SKIP() << "no GPU: " << ::rwkv::cuda_unavailable_reason(); \
  } while (0)

namespace rwkv::test {

// The value an f32 CPU tensor has once stored in `dtype` (bf16 rounds to
// nearest even), as f32 again: the CPU reference then sees exactly the GPU's inputs.
inline Tensor round_to(const Tensor& t, DType dtype) {
  return dtype == DType::F32 ? t.clone() : t.to_dtype(dtype).to_dtype(DType::F32);
}

// CPU tensor -> CUDA tensor stored as dtype.
inline Tensor to_gpu(const Tensor& t, DType dtype) {
  return (t.dtype() == dtype ? t : t.to_dtype(dtype)).to(Device::cuda());
}

// CUDA (or CPU) tensor -> CPU f32.
inline Tensor to_host_f32(const Tensor& t) {
  Tensor h = t.is_cpu() ? t : t.to(Device::cpu());
  return h.dtype() == DType::F32 ? h : h.to_dtype(DType::F32);
}

inline const char* dtype_label(DType d) { return d == DType::BF16 ? "bf16" : "f32"; }

// Comparison allowing |actual - expected| <= rtol |expected| + scale * max|expected|:
// the second term absorbs the absolute error of sums whose terms cancel (a
// GEMM entry, a gradient), which is relative to the size of the terms, not of
// the result.
struct Tolerance {
  double rtol;
  double scale;  // fraction of max|expected|
};

// f32 kernels against the f32 CPU kernels: the same maths, different
// summation orders and exp implementations.
constexpr Tolerance kF32Tight{1e-5, 1e-6};
// Outputs stored in bf16: one rounding of 2^-9 relative, plus fp32 noise.
constexpr Tolerance kBf16{1e-2, 1e-3};

inline void expect_near(const Tensor& actual, const Tensor& expected, Tolerance tol, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  std::vector<double> a = as_doubles(actual), e = as_doubles(expected);
  double max_abs = 0.0;
  for (double x : e) max_abs = std::max(max_abs, std::abs(x));
  const double atol = tol.scale * max_abs + 1e-30;
  const ElementErrors r = element_errors(a, e, tol.rtol, atol);
  ASSERT_TRUE(r.nonfinite < 0) << what << ": element " << r.nonfinite << " is " << a[static_cast<size_t>(r.nonfinite)];
  record_measured_error(what, r.used, r.relative);
  EXPECT_LE(r.worst, 0.0) << what << ": element " << r.worst_i << " is " << a[r.worst_i] << ", expected " << e[r.worst_i]
                        << " (rtol " << tol.rtol << ", atol " << atol << " = " << tol.scale << " * max|expected| "
                        << max_abs << ")";
}

inline void expect_all_finite(const Tensor& t, const std::string& what) {
  std::vector<double> a = as_doubles(t);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(std::isfinite(a[i])) << what << ": element " << i << " is " << a[i];
}

// Same bytes: reductions must give identical results run after run.
inline void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  Tensor ha = a.is_cpu() ? a : a.to(Device::cpu());
  Tensor hb = b.is_cpu() ? b : b.to(Device::cpu());
  ASSERT_EQ(ha.shape(), hb.shape()) << what;
  ASSERT_EQ(ha.dtype(), hb.dtype()) << what;
  EXPECT_EQ(std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()), 0) << what << ": results differ between runs";
}

// Names parameterised tests by dtype: Foo/f32, Foo/bf16.
struct DTypeName {
  std::string operator()(const ::testing::TestParamInfo<DType>& info) const { return dtype_label(info.param); }
};

}  // namespace rwkv::test
