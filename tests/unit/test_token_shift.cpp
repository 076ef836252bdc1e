#include "kernels/token_shift.h"

#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

TEST(TokenShift, ForwardMatchesDefinition) {
  const int64_t B = 2, T = 4, C = 3;
  Tensor x = random_tensor({B, T, C}, DType::F64, 1), m = random_tensor({C}, DType::F64, 2, 0, 1);
  Tensor out = Tensor::empty({B, T, C}, DType::F64);
  token_shift_forward(x, {m}, {out});
  const double* xp = x.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const double prev = t ? xp[(b * T + t - 1) * C + c] : 0.0;
        const double mix = m.data<double>()[c];
        EXPECT_DOUBLE_EQ(out.data<double>()[(b * T + t) * C + c], xp[(b * T + t) * C + c] * mix + prev * (1 - mix));
      }
  // With a carried state the first token blends with it instead of zero.
  Tensor state = random_tensor({B, C}, DType::F64, 3);
  token_shift_forward(x, {m}, {out}, state);
  const double mix0 = m.data<double>()[0];
  EXPECT_DOUBLE_EQ(out.data<double>()[0], xp[0] * mix0 + state.data<double>()[0] * (1 - mix0));
}

TEST(TokenShift, BackwardMatchesFiniteDifferencesForThreeMixes) {
  const int64_t B = 2, T = 5, C = 4;
  Tensor x = random_tensor({B, T, C}, DType::F64, 4);
  std::vector<Tensor> mixes, probes, outs, dmixes;
  for (int j = 0; j < 3; ++j) {
    mixes.push_back(random_tensor({C}, DType::F64, 10 + j, 0, 1));
    probes.push_back(random_tensor({B, T, C}, DType::F64, 20 + j));
    outs.push_back(Tensor::empty({B, T, C}, DType::F64));
    dmixes.push_back(Tensor::zeros({C}, DType::F64));
  }
  Tensor dx = Tensor::empty({B, T, C}, DType::F64);
  token_shift_backward(x, mixes, probes, dx, dmixes);
  auto loss = [&] {
    token_shift_forward(x, mixes, outs);
    double s = 0;
    for (int j = 0; j < 3; ++j) s += test::dot(outs[static_cast<size_t>(j)], probes[static_cast<size_t>(j)]);
    return s;
  };
  test::expect_gradient(x, dx, loss, "dL/dx", 1e-6, 1e-8);
  for (int j = 0; j < 3; ++j)
    test::expect_gradient(mixes[static_cast<size_t>(j)], dmixes[static_cast<size_t>(j)], loss, "dL/dmix", 1e-6, 1e-8);
}

TEST(TokenShift, FloatMatchesDouble) {
  const int64_t B = 3, T = 17, C = 37;
  Tensor x = random_tensor({B, T, C}, DType::F64, 5), m = random_tensor({C}, DType::F64, 6, 0, 1);
  Tensor probe = random_tensor({B, T, C}, DType::F64, 7);
  auto run = [&](DType dt) {
    Tensor xx = x.to_dtype(dt), mm = m.to_dtype(dt), out = Tensor::empty({B, T, C}, dt);
    token_shift_forward(xx, {mm}, {out});
    Tensor dx = Tensor::empty({B, T, C}, dt), dm = Tensor::zeros({C}, dt);
    token_shift_backward(xx, {mm}, {probe.to_dtype(dt)}, dx, {dm});
    return std::vector<Tensor>{out, dx, dm};
  };
  auto a = run(DType::F32), e = run(DType::F64);
  for (int i = 0; i < 3; ++i) test::expect_close(a[static_cast<size_t>(i)], e[static_cast<size_t>(i)], 1e-5, 1e-5, "token shift");
}

TEST(TokenShift, MismatchedListsGiveClearErrors) {
  Tensor x = Tensor::zeros({1, 2, 3}, DType::F32), m = Tensor::zeros({3}, DType::F32);
  test::expect_error([&] { token_shift_forward(x, {m, m}, {x}); }, {"2 mix vectors", "1 out"});
  test::expect_error([&] { token_shift_forward(x, {}, {}); }, {"1 to 3 mix"});
}

}  // namespace
}  // namespace rwkv
