// Dropout (kernels/dropout.h): the keep rate and scale, the mask as a
// function of (sample, position, channel, site, seed) only, so that a batch
// split into other rows or data-parallel ranks draws the same mask, and the
// same call twice is the mask squared (forward then backward).
#include "kernels/dropout.h"

#include <cmath>

#include "test_util.h"

namespace rwkv {
namespace {

Tensor ones(const Shape& shape, DType dtype = DType::F32) {
  Tensor t = Tensor::empty(shape, dtype);
  if (dtype == DType::F64) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = 1.0;
  } else {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 1.0f;
  }
  return t;
}

TEST(Dropout, KeepsOneMinusPScaledByItsInverse) {
  for (float p : {0.05f, 0.1f, 0.5f, 0.9f}) {
    SCOPED_TRACE(p);
    Tensor x = ones({8, 64, 256});  // 131072 elements
    dropout_(x, DropoutKey{p, 7, 3, 1000, 1});
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    int64_t kept = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x.data<float>()[i];
      ASSERT_TRUE(v == 0.0f || v == scale) << v;
      kept += v != 0.0f;
    }
    // Binomial: the standard deviation of the kept share is sqrt(p (1 - p) / n) <= 0.0014.
    EXPECT_NEAR(static_cast<double>(kept) / static_cast<double>(x.numel()), 1.0 - p, 0.006);
  }
}

TEST(Dropout, ZeroPLeavesTheTensorAsItIs) {
  Tensor x = test::random_tensor({2, 5, 7}, DType::F32, 3);
  const std::vector<float> before = x.to_vector<float>();
  dropout_(x, DropoutKey{0.0f, 1, 1, 0, 1});
  EXPECT_EQ(x.to_vector<float>(), before);
}

TEST(Dropout, TheMaskDependsOnTheSampleNotOnTheBatchItSitsIn) {
  // 6 samples g = 100, 103, ..., 115 (stride 3, as with 3 data-parallel ranks)
  // in one batch, against each sample alone (stride irrelevant) and against
  // rows 2..5 as a batch of their own starting at g = 106.
  const int64_t T = 9, C = 40;
  Tensor whole = ones({6, T, C});
  dropout_(whole, DropoutKey{0.3f, 42, 5, 100, 3});
  for (int64_t b = 0; b < 6; ++b) {
    Tensor alone = ones({1, T, C});
    dropout_(alone, DropoutKey{0.3f, 42, 5, static_cast<uint64_t>(100 + 3 * b), 17});
    const std::vector<float> want = whole.view({6, T * C}).slice_rows(b, 1).to_vector<float>();
    EXPECT_EQ(alone.to_vector<float>(), want) << "sample row " << b;
  }
  Tensor tail = ones({4, T, C});
  dropout_(tail, DropoutKey{0.3f, 42, 5, 106, 3});
  EXPECT_EQ(tail.to_vector<float>(), whole.view({6, T * C}).slice_rows(2, 4).to_vector<float>());
  // Another site, seed or sample set gives another mask.
  for (const DropoutKey& other : {DropoutKey{0.3f, 42, 6, 100, 3}, DropoutKey{0.3f, 43, 5, 100, 3},
                                  DropoutKey{0.3f, 42, 5, 101, 3}}) {
    Tensor x = ones({6, T, C});
    dropout_(x, other);
    EXPECT_NE(x.to_vector<float>(), whole.to_vector<float>());
  }
}

TEST(Dropout, TwiceIsTheMaskSquaredInFloatAndDouble) {
  // Forward then backward on the same values: x m^2 / (1 - p)^2, exactly.
  const DropoutKey key{0.25f, 9, 2, 0, 1};
  Tensor x = test::random_tensor({3, 4, 16}, DType::F64, 5);
  const std::vector<double> before = x.to_vector<double>();
  Tensor mask = ones({3, 4, 16}, DType::F64);
  dropout_(mask, key);
  dropout_(x, key);
  dropout_(x, key);
  const std::vector<double> got = x.to_vector<double>(), m = mask.to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], before[i] * m[i] * m[i]) << i;
  // The f32 and f64 masks are the same mask.
  Tensor m32 = ones({3, 4, 16});
  dropout_(m32, key);
  for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m32.to_vector<float>()[i] != 0.0f, m[i] != 0.0) << i;
}

TEST(Dropout, RefusesBadArguments) {
  Tensor x = ones({2, 3, 4});
  test::expect_error([&] { dropout_(x, DropoutKey{1.0f, 0, 0, 0, 1}); }, {"dropout_", "p must be in [0, 1)"});
  test::expect_error([&] { dropout_(x, DropoutKey{-0.1f, 0, 0, 0, 1}); }, {"[0, 1)"});
  Tensor flat = ones({6, 4});
  test::expect_error([&] { dropout_(flat, DropoutKey{0.1f, 0, 0, 0, 1}); }, {"dropout_", "[B, T, C]"});
}

}  // namespace
}  // namespace rwkv
