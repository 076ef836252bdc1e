#include "kernels/activations.h"

#include "kernels/elementwise_math.h"
#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

TEST(Activations, SigmoidGateBackwardMatchesFiniteDifferences) {
  Tensor r = random_tensor({3, 4}, DType::F64, 1, -5, 5), y = random_tensor({3, 4}, DType::F64, 2);
  Tensor probe = random_tensor({3, 4}, DType::F64, 3);
  Tensor dr = Tensor::empty({3, 4}, DType::F64), dy = Tensor::empty({3, 4}, DType::F64);
  sigmoid_gate_backward(r, y, probe, dr, dy);
  auto loss = [&] {
    Tensor out = Tensor::empty({3, 4}, DType::F64);
    sigmoid_gate_forward(r, y, out);
    return test::dot(out, probe);
  };
  test::expect_gradient(r, dr, loss, "dL/dr", 1e-6, 1e-8);
  test::expect_gradient(y, dy, loss, "dL/dy", 1e-6, 1e-8);
}

TEST(Activations, SquaredReluBackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({50}, DType::F64, 4, -2, 2), probe = random_tensor({50}, DType::F64, 5);
  Tensor dx = Tensor::empty({50}, DType::F64);
  squared_relu_backward(x, probe, dx);
  auto loss = [&] {
    Tensor out = Tensor::empty({50}, DType::F64);
    squared_relu_forward(x, out);
    return test::dot(out, probe);
  };
  test::expect_gradient(x, dx, loss, "dL/dx", 1e-6, 1e-8);
}

TEST(Activations, SigmoidIsStableForLargeInputs) {
  EXPECT_EQ(sigmoid(1000.0), 1.0);
  EXPECT_EQ(sigmoid(-1000.0), 0.0);
  EXPECT_EQ(sigmoid(-1000.0f), 0.0f);
  EXPECT_DOUBLE_EQ(sigmoid(0.0), 0.5);
}

TEST(Activations, FloatMatchesDouble) {
  Tensor r = random_tensor({1000}, DType::F64, 6, -8, 8), y = random_tensor({1000}, DType::F64, 7);
  Tensor d = random_tensor({1000}, DType::F64, 8);
  auto run = [&](DType dt) {
    Tensor rr = r.to_dtype(dt), yy = y.to_dtype(dt), dd = d.to_dtype(dt);
    Tensor g = Tensor::empty({1000}, dt), dr = Tensor::empty({1000}, dt), dy = Tensor::empty({1000}, dt);
    Tensor s = Tensor::empty({1000}, dt), ds = Tensor::empty({1000}, dt);
    sigmoid_gate_forward(rr, yy, g);
    sigmoid_gate_backward(rr, yy, dd, dr, dy);
    squared_relu_forward(rr, s);
    squared_relu_backward(rr, dd, ds);
    return std::vector<Tensor>{g, dr, dy, s, ds};
  };
  auto a = run(DType::F32), e = run(DType::F64);
  for (size_t i = 0; i < a.size(); ++i) test::expect_close(a[i], e[i], 1e-6, 1e-7, "activation " + std::to_string(i));
}

TEST(Activations, SquaredReluBackwardMayWriteIntoDout) {
  Tensor x = Tensor::from_vector<float>({-1.0f, 2.0f, 3.0f}, {3}), d = Tensor::from_vector<float>({5.0f, 1.0f, -1.0f}, {3});
  squared_relu_backward(x, d, d);
  EXPECT_EQ(d.to_vector<float>(), (std::vector<float>{0.0f, 4.0f, -6.0f}));
}

TEST(Activations, ShapeMismatchGivesClearError) {
  Tensor r = Tensor::zeros({3}, DType::F32), y = Tensor::zeros({4}, DType::F32), out = Tensor::zeros({3}, DType::F32);
  test::expect_error([&] { sigmoid_gate_forward(r, y, out); }, {"sigmoid_gate_forward", "y", "[4]"});
}

}  // namespace
}  // namespace rwkv
