#include "kernels/fast_exp.h"

#include <cmath>

#include "test_util.h"

namespace rwkv {
namespace {

TEST(FastExp, RelativeErrorIsAFewUlp) {
  double worst = 0.0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    const float xf = static_cast<float>(x);
    const double exact = std::exp(static_cast<double>(xf));
    const double rel = std::abs(fast_exp(xf) - exact) / exact;
    worst = std::max(worst, rel);
  }
  EXPECT_LT(worst, 4e-7) << "worst relative error";  // about 3 ulp of float
}

TEST(FastExp, UnderflowIsExactlyZeroAndOverflowIsFinite) {
  EXPECT_EQ(fast_exp(-1e38f), 0.0f);
  EXPECT_EQ(fast_exp(-88.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(fast_exp(1e38f)));
  EXPECT_FLOAT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_EQ(exp_t(1.0), std::exp(1.0));
}

TEST(FastLog, RelativeErrorIsAFewUlpOnWkvDenominators) {
  double worst = 0.0;
  for (double x = 1.0; x < 1e6; x *= 1.0007) {
    const float xf = static_cast<float>(x);
    const double exact = std::log(static_cast<double>(xf));
    worst = std::max(worst, std::abs(fast_log(xf) - exact) / std::max(exact, 1e-3));
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(fast_log(1.0f), 0.0f);
  EXPECT_NEAR(fast_log(0.5f), std::log(0.5), 1e-7);
}

}  // namespace
}  // namespace rwkv
