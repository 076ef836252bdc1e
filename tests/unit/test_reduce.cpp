#include "kernels/reduce.h"

#include <cmath>

#include "core/threads.h"
#include "test_util.h"

namespace rwkv {
namespace {

TEST(Reduce, GlobalNormAndClipping) {
  Tensor a = Tensor::from_vector<float>({3.0f, 0.0f}, {2}), b = Tensor::from_vector<float>({4.0f}, {1});
  std::vector<Tensor> grads = {a, b};
  EXPECT_DOUBLE_EQ(global_norm(grads), 5.0);
  double norm = clip_global_norm_(grads, 1.0f);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_NEAR(global_norm(grads), 1.0, 1e-6);
  EXPECT_NEAR(a.data<float>()[0], 0.6f, 1e-6);
  // Below the threshold nothing changes; max_norm <= 0 disables clipping.
  EXPECT_EQ(clip_factor(0.5, 1.0f), 1.0f);
  EXPECT_EQ(clip_factor(50.0, 0.0f), 1.0f);
}

TEST(Reduce, SumOfSquaresIsExactForLargeTensorsAndThreadIndependent) {
  const int64_t n = 1000003;  // not a multiple of the chunk size
  Tensor x = test::random_tensor({n}, DType::F32, 3);
  double expected = 0.0;
  for (float v : x.to_vector<float>()) expected += static_cast<double>(v) * v;
  set_num_threads(1);
  const double one = sum_of_squares(x);
  set_num_threads(2);
  const double two = sum_of_squares(x);
  set_num_threads(hardware_threads());
  EXPECT_EQ(one, two);
  EXPECT_NEAR(one, expected, 1e-9 * expected);
}

// The batched form equals one call per tensor, bit for bit, in both dtypes
// and for empty tensors.
TEST(Reduce, SumsOfSquaresEqualsOneCallPerTensor) {
  std::vector<Tensor> xs = {test::random_tensor({5}, DType::F32, 1), Tensor::empty({0}, DType::F32),
                            test::random_tensor({70001}, DType::F64, 2), test::random_tensor({3, 4}, DType::F32, 3)};
  const std::vector<double> batched = sums_of_squares(xs);
  ASSERT_EQ(batched.size(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(batched[i], sum_of_squares(xs[i])) << "tensor " << i;
  EXPECT_EQ(batched[1], 0.0);
  EXPECT_TRUE(sums_of_squares({}).empty());
  EXPECT_EQ(global_norm(xs), std::sqrt(batched[0] + batched[1] + batched[2] + batched[3]));
}

TEST(Reduce, AddScaleAndCast) {
  Tensor a = Tensor::from_vector<double>({1.0, 2.0}, {2}), b = Tensor::from_vector<double>({0.5, -4.0}, {2});
  add_(a, b);
  scale_(a, 2.0f);
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{3.0, -4.0}));
  Tensor h = Tensor::empty({2}, DType::BF16), back = Tensor::empty({2}, DType::F32);
  cast(a, h);
  cast(h, back);
  EXPECT_EQ(back.to_vector<float>(), (std::vector<float>{3.0f, -4.0f}));
  Tensor wrong = Tensor::empty({3}, DType::F64);
  test::expect_error([&] { add_(a, wrong); }, {"add_", "b", "[3]"});
}

}  // namespace
}  // namespace rwkv
