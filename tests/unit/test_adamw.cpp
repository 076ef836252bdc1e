#include "kernels/adamw.h"

#include <cmath>

#include "test_util.h"

namespace rwkv {
namespace {

// Steps written out by hand from the AdamW definition, in double.
TEST(AdamW, MatchesHandWrittenSteps) {
  const std::vector<double> p0 = {0.5, -1.0, 2.0}, g = {0.1, -0.2, 0.3};
  Tensor p = Tensor::from_vector<double>(p0, {3}), grad = Tensor::from_vector<double>(g, {3});
  Tensor m = Tensor::zeros({3}, DType::F64), v = Tensor::zeros({3}, DType::F64);
  AdamWConfig cfg;
  cfg.lr = 0.01f;
  cfg.lr_multiplier = 2.0f;
  cfg.weight_decay = 0.1f;
  cfg.decay = true;
  cfg.grad_scale = 0.5f;
  std::vector<double> ep = p0, em(3, 0.0), ev(3, 0.0);
  for (int step = 1; step <= 3; ++step) {
    cfg.step = step;
    adamw_update(p, grad, m, v, cfg);
    const double lr = static_cast<double>(cfg.lr) * 2.0, b1 = 0.9f, b2 = 0.99f;
    for (int i = 0; i < 3; ++i) {
      const double gi = g[static_cast<size_t>(i)] * 0.5;
      em[static_cast<size_t>(i)] = b1 * em[static_cast<size_t>(i)] + (1 - b1) * gi;
      ev[static_cast<size_t>(i)] = b2 * ev[static_cast<size_t>(i)] + (1 - b2) * gi * gi;
      const double mh = em[static_cast<size_t>(i)] / (1 - std::pow(b1, step)), vh = ev[static_cast<size_t>(i)] / (1 - std::pow(b2, step));
      ep[static_cast<size_t>(i)] = ep[static_cast<size_t>(i)] * (1 - lr * static_cast<double>(0.1f)) - lr * mh / (std::sqrt(vh) + static_cast<double>(1e-8f));
    }
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(p.data<double>()[i], ep[static_cast<size_t>(i)], 1e-6) << "step " << step;
  }
}

TEST(AdamW, DecayFlagOffLeavesWeightDecayOut) {
  Tensor p1 = Tensor::from_vector<float>({1.0f}, {1}), p2 = p1.clone(), g = Tensor::zeros({1}, DType::F32);
  Tensor m = Tensor::zeros({1}, DType::F32), v = Tensor::zeros({1}, DType::F32);
  AdamWConfig cfg;
  cfg.lr = 0.1f;
  cfg.weight_decay = 0.5f;
  cfg.decay = false;
  adamw_update(p1, g, m, v, cfg);
  EXPECT_EQ(p1.data<float>()[0], 1.0f);  // zero gradient, no decay: unchanged
  cfg.decay = true;
  adamw_update(p2, g, m, v, cfg);
  EXPECT_FLOAT_EQ(p2.data<float>()[0], 1.0f - 0.1f * 0.5f);
}

TEST(AdamW, WritesTheCompactCopy) {
  Tensor p = test::random_tensor({100}, DType::F32, 1), g = test::random_tensor({100}, DType::F32, 2);
  Tensor m = Tensor::zeros({100}, DType::F32), v = Tensor::zeros({100}, DType::F32);
  Tensor copy = Tensor::zeros({100}, DType::BF16);
  AdamWConfig cfg;
  cfg.lr = 1e-3f;
  adamw_update(p, g, m, v, cfg, copy);
  test::expect_close(copy, p, 1.0 / 256, 0, "bf16 copy of the updated parameter");
}

TEST(AdamW, FloatMatchesDouble) {
  Tensor p = test::random_tensor({1000}, DType::F64, 3), g = test::random_tensor({1000}, DType::F64, 4);
  auto run = [&](DType dt) {
    Tensor pp = p.to_dtype(dt), gg = g.to_dtype(dt), m = Tensor::zeros({1000}, dt), v = Tensor::zeros({1000}, dt);
    AdamWConfig cfg;
    cfg.lr = 1e-2f;
    cfg.weight_decay = 0.1f;
    cfg.decay = true;
    for (int step = 1; step <= 5; ++step) {
      cfg.step = step;
      adamw_update(pp, gg, m, v, cfg);
    }
    return std::vector<Tensor>{pp, m, v};
  };
  auto a = run(DType::F32), e = run(DType::F64);
  const char* names[] = {"param", "m", "v"};
  for (int i = 0; i < 3; ++i) test::expect_close(a[static_cast<size_t>(i)], e[static_cast<size_t>(i)], 1e-5, 1e-7, names[i]);
}

TEST(AdamW, BadConfigGivesClearErrors) {
  Tensor p = Tensor::zeros({2}, DType::F32), g = Tensor::zeros({3}, DType::F32), m = p.clone(), v = p.clone();
  AdamWConfig cfg;
  test::expect_error([&] { adamw_update(p, g, m, v, cfg); }, {"adamw_update", "grad", "[3]"});
  Tensor g2 = p.clone();
  cfg.step = 0;
  test::expect_error([&] { adamw_update(p, g2, m, v, cfg); }, {"step must be >= 1"});
}

}  // namespace
}  // namespace rwkv
