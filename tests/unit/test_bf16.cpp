#include "core/bf16.h"

#include <cmath>
#include <limits>

#include "test_util.h"

namespace rwkv {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 lies exactly between 1 and the next bf16 (1 + 2^-7): ties go to even (1.0).
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
  // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up to even.
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)).bits, 0x3f82);
  // Just above half rounds up.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)).bits, 0x3f81);
  EXPECT_EQ(float_to_bf16(-2.0f).bits, 0xc000);
}

TEST(Bf16, SpecialValues) {
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low 16 bits must stay a NaN, not become inf.
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(bits_float(0x7f800001u)))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
  // The largest float rounds to infinity in bf16 (it is above the largest bf16).
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::max()))));
  EXPECT_EQ(bf16_to_float(float_to_bf16(0.0f)), 0.0f);
}

TEST(Bf16, RelativeErrorIsAtMostHalfAnUlp) {
  for (float x = -1000.0f; x < 1000.0f; x += 0.37f) {
    if (x == 0.0f) continue;
    float r = bf16_to_float(float_to_bf16(x));
    EXPECT_LE(std::abs(r - x), std::abs(x) * std::ldexp(1.0f, -8) * 1.0001f) << x;
  }
}

}  // namespace
}  // namespace rwkv
