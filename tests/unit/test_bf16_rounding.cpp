// f32 -> bf16 rounding (core/bf16.h) at its boundaries, beyond test_bf16.cpp:
// signed zeros, subnormals, carries into the exponent, the overflow threshold,
// NaN sign and quietness, every bf16 value's round trip, and an independent
// nearest-even reference for every sign/exponent/mantissa prefix at and around
// its halfway points. The GPU kernels store through the same function.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/bf16.h"

namespace rwkv {
namespace {

uint16_t round_bits(uint32_t f32_bits) { return float_to_bf16(bits_float(f32_bits)).bits; }

// The value of a bf16 bit pattern's magnitude, with the pattern after the
// largest finite one (0x7f80) read as 2^128: IEEE rounds as if the exponent
// range were unbounded and overflows to infinity only past the midpoint
// between the largest finite value and 2^128.
double magnitude(uint16_t bits) {
  bits &= 0x7fff;
  if (bits == 0x7f80) return std::ldexp(1.0, 128);
  return static_cast<double>(bf16_to_float(bf16{bits}));
}

// Round to nearest, ties to even, computed from distances in double (exact
// for these values), independent of the bit trick under test.
uint16_t reference_round(uint32_t f32_bits) {
  const double x = std::abs(static_cast<double>(bits_float(f32_bits)));
  const uint16_t sign = static_cast<uint16_t>((f32_bits >> 16) & 0x8000u);
  const uint16_t lo = static_cast<uint16_t>((f32_bits >> 16) & 0x7fffu);  // truncation toward zero
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double d_lo = x - magnitude(lo), d_hi = magnitude(hi) - x;
  uint16_t pick;
  if (d_lo < d_hi) {
    pick = lo;
  } else if (d_hi < d_lo) {
    pick = hi;
  } else {
    pick = (lo & 1u) == 0 ? lo : hi;
  }
  return static_cast<uint16_t>(sign | pick);
}

TEST(Bf16Rounding, SignedZerosAndInfinities) {
  EXPECT_EQ(float_to_bf16(0.0f).bits, 0x0000);
  EXPECT_EQ(float_to_bf16(-0.0f).bits, 0x8000);
  EXPECT_TRUE(std::signbit(bf16_to_float(float_to_bf16(-0.0f))));
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()).bits, 0x7f80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()).bits, 0xff80);
}

TEST(Bf16Rounding, Subnormals) {
  EXPECT_EQ(round_bits(0x00000001u), 0x0000);  // the smallest f32 subnormal rounds to +0 ...
  EXPECT_EQ(round_bits(0x80000001u), 0x8000);  // ... and its negative to -0
  EXPECT_EQ(round_bits(0x00008000u), 0x0000);  // tie between 0 (even) and the smallest bf16 subnormal
  EXPECT_EQ(round_bits(0x00008001u), 0x0001);  // just above the tie: the smallest bf16 subnormal
  EXPECT_EQ(round_bits(0x00018000u), 0x0002);  // tie between 0x0001 (odd) and 0x0002: up to even
  EXPECT_EQ(round_bits(0x00010000u), 0x0001);  // exactly representable
  // The largest f32 subnormal rounds up across the boundary to FLT_MIN.
  EXPECT_EQ(round_bits(0x007fffffu), 0x0080);
  EXPECT_EQ(bf16_to_float(bf16{0x0080}), std::numeric_limits<float>::min());
}

TEST(Bf16Rounding, CarryIntoTheExponent) {
  // 0x3fff is the largest bf16 below 2 (odd): a tie above it rounds up to 2.0.
  EXPECT_EQ(round_bits(0x3fff8000u), 0x4000);
  EXPECT_EQ(bf16_to_float(bf16{0x4000}), 2.0f);
  EXPECT_EQ(round_bits(0x3fff7fffu), 0x3fff);  // just below the tie
  EXPECT_EQ(round_bits(0x3fffffffu), 0x4000);
  EXPECT_EQ(round_bits(0xbfff8000u), 0xc000);  // -2.0, symmetric
}

TEST(Bf16Rounding, OverflowThreshold) {
  // 0x7f7f is the largest finite bf16 (about 3.39e38; its last bit is odd).
  EXPECT_EQ(round_bits(0x7f7f0000u), 0x7f7f);
  EXPECT_EQ(round_bits(0x7f7f7fffu), 0x7f7f);  // below the midpoint to 2^128: stays finite
  EXPECT_EQ(round_bits(0x7f7f8000u), 0x7f80);  // the midpoint, odd below: to infinity
  EXPECT_EQ(round_bits(0xff7f8000u), 0xff80);  // and to -infinity
  EXPECT_EQ(round_bits(0x7f7e8000u), 0x7f7e);  // a midpoint with an even value below stays there
  EXPECT_EQ(round_bits(0x7f7e8001u), 0x7f7f);
}

TEST(Bf16Rounding, NaNsStayNaNsWithTheirSignAndAreQuiet) {
  for (uint32_t bits : {0x7f800001u, 0x7f80ffffu, 0x7fc00000u, 0x7fffffffu, 0x7fbf0000u}) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const uint16_t h = round_bits(bits | sign);
      EXPECT_TRUE(std::isnan(bf16_to_float(bf16{h}))) << std::hex << (bits | sign);
      EXPECT_EQ(h & 0x8000u, sign >> 16) << std::hex << (bits | sign);
      EXPECT_EQ(h & 0x7fc0u, 0x7fc0u) << "quiet NaN expected for " << std::hex << (bits | sign);
    }
  }
}

TEST(Bf16Rounding, EveryBf16ValueRoundTrips) {
  for (uint32_t b = 0; b <= 0xffffu; ++b) {
    const bf16 h{static_cast<uint16_t>(b)};
    const float f = bf16_to_float(h);
    const uint16_t back = float_to_bf16(f).bits;
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(bf16{back}))) << std::hex << b;
      EXPECT_EQ(back & 0x8000u, b & 0x8000u) << std::hex << b;
    } else {
      ASSERT_EQ(back, b) << std::hex << b;
    }
  }
}

// Every upper half (sign, exponent, 7 mantissa bits), with the dropped lower
// half at 0, at the tie and on either side of it, and at the extremes.
TEST(Bf16Rounding, MatchesANearestEvenReferenceAtEveryHalfway) {
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x3fffu, 0x7fffu, 0x8000u, 0x8001u, 0xc000u, 0xffffu};
  int64_t checked = 0;
  for (uint32_t upper = 0; upper <= 0xffffu; ++upper) {
    if ((upper & 0x7f80u) == 0x7f80u) continue;  // inf/NaN prefixes: the tests above
    for (uint32_t low : lows) {
      const uint32_t bits = (upper << 16) | low;
      ASSERT_EQ(round_bits(bits), reference_round(bits)) << "f32 bits 0x" << std::hex << bits;
      ++checked;
    }
  }
  EXPECT_EQ(checked, (65536 - 256) * 8);  // 256 prefixes are inf/NaN (2 signs x 128)
}

}  // namespace
}  // namespace rwkv
