#include "kernels/cross_entropy.h"

#include <cmath>

#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

TEST(CrossEntropy, LossMatchesDefinition) {
  Tensor logits = Tensor::from_vector<double>({1.0, 2.0, 3.0, -1.0, 0.0, 4.0}, {2, 3});
  Tensor targets = Tensor::from_vector<int32_t>({2, 0}, {2});
  Tensor losses = Tensor::empty({2}, DType::F64);
  cross_entropy_forward(logits, targets, losses);
  EXPECT_NEAR(losses.data<double>()[0], std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0, 1e-14);
  EXPECT_NEAR(losses.data<double>()[1], std::log(std::exp(-1.0) + 1.0 + std::exp(4.0)) + 1.0, 1e-14);
  // Huge logits do not overflow.
  Tensor big = Tensor::from_vector<float>({1000.0f, 0.0f}, {1, 2});
  Tensor t0 = Tensor::from_vector<int32_t>({1}, {1});
  Tensor l32 = Tensor::empty({1}, DType::F32);
  cross_entropy_forward(big, t0, l32);
  EXPECT_FLOAT_EQ(l32.data<float>()[0], 1000.0f);
}

// Without L2Wrap the gradient is that of mean loss; check by finite differences.
TEST(CrossEntropy, GradientMatchesFiniteDifferences) {
  const int64_t N = 4, V = 7;
  Tensor logits = random_tensor({N, V}, DType::F64, 1, -3, 3);
  Tensor targets = Tensor::from_vector<int32_t>({0, 6, 3, 3}, {N});
  Tensor losses = Tensor::empty({N}, DType::F64), dlogits = Tensor::empty({N, V}, DType::F64);
  cross_entropy_forward_backward(logits, targets, losses, dlogits, 1.0f / N, 0.0f);
  auto loss = [&] {
    Tensor l = Tensor::empty({N}, DType::F64);
    cross_entropy_forward(logits, targets, l);
    double s = 0;
    for (double x : l.to_vector<double>()) s += x;
    return s / N;
  };
  test::expect_gradient(logits, dlogits, loss, "dL/dlogits", 1e-6, 1e-8);
}

// L2Wrap adds factor * max_logit at the first argmax and nothing elsewhere.
TEST(CrossEntropy, L2WrapAddsGradientAtFirstArgmax) {
  Tensor logits = Tensor::from_vector<double>({0.5, 2.0, 2.0, -1.0}, {1, 4});  // tie: first max wins
  Tensor targets = Tensor::from_vector<int32_t>({0}, {1});
  Tensor l = Tensor::empty({1}, DType::F64), plain = Tensor::empty({1, 4}, DType::F64), wrapped = Tensor::empty({1, 4}, DType::F64);
  cross_entropy_forward_backward(logits, targets, l, plain, 1.0f, 0.0f);
  const float factor = 1e-4f;
  cross_entropy_forward_backward(logits, targets, l, wrapped, 1.0f, factor);
  for (int i = 0; i < 4; ++i) {
    const double extra = i == 1 ? static_cast<double>(factor) * 2.0 : 0.0;
    EXPECT_NEAR(wrapped.data<double>()[i] - plain.data<double>()[i], extra, 1e-15) << i;
  }
}

TEST(CrossEntropy, FloatMatchesDoubleAndGradientMayOverwriteLogits) {
  const int64_t N = 9, V = 1000;
  Tensor logits = random_tensor({N, V}, DType::F64, 2, -10, 10);
  std::vector<int32_t> t;
  for (int i = 0; i < N; ++i) t.push_back(i * 97 % V);
  Tensor targets = Tensor::from_vector<int32_t>(t, {N});
  Tensor l64 = Tensor::empty({N}, DType::F64), g64 = Tensor::empty({N, V}, DType::F64);
  cross_entropy_forward_backward(logits, targets, l64, g64, 1.0f / N, 1e-4f / N);
  Tensor in_place = logits.to_dtype(DType::F32);
  Tensor l32 = Tensor::empty({N}, DType::F32);
  cross_entropy_forward_backward(in_place, targets, l32, in_place, 1.0f / N, 1e-4f / N);
  test::expect_close(l32, l64, 1e-6, 1e-6, "losses");
  test::expect_close(in_place, g64, 1e-5, 1e-8, "dlogits in place");
}

TEST(CrossEntropy, BadTargetsGiveClearErrors) {
  Tensor logits = Tensor::zeros({2, 3}, DType::F32), losses = Tensor::zeros({2}, DType::F32);
  Tensor targets = Tensor::from_vector<int32_t>({0, 3}, {2});
  test::expect_error([&] { cross_entropy_forward(logits, targets, losses); }, {"target 3", "row 1"});
  Tensor short_targets = Tensor::from_vector<int32_t>({0}, {1});
  test::expect_error([&] { cross_entropy_forward(logits, short_targets, losses); }, {"targets", "[1]", "expected [2]"});
}

}  // namespace
}  // namespace rwkv
