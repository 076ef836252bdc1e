// exp for the hot loops, shared by both backends.
//
// Host (float): exp(x) = 2^n * e^r with n = round(x / ln2), r = x - n ln2 in
// [-ln2/2, ln2/2] (ln2 split in a high and a low part so r is exact to float
// precision), e^r by its degree-7 Taylor polynomial (truncation error below
// r^8/8! = 5e-9 relative), 2^n built from the exponent bits. Branch-free, so
// the compiler vectorises loops that call it. Relative error about 2 ulp;
// x < -87 gives exactly 0 (the WKV state starts at exponent -1e38 and must
// contribute nothing), x > 88 saturates at 2^127 * e^r instead of inf.
// Device (float): the hardware __expf. Double: std::exp (reference paths).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/bf16.h"
#include "core/hd.h"

namespace rwkv {

RWKV_HD float fast_exp(float x) {
#if defined(__CUDA_ARCH__)
  return __expf(x);
#else
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693145751953125f;
  const float ln2_lo = 1.42860682030941723212e-6f;
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // Round to the nearest integer by adding 1.5 * 2^23: the sum's low mantissa
  // bits then hold the integer. Unlike nearbyint this vectorises on every x86-64.
  const float shifter = 12582912.0f;
  float n = (xc * log2e + shifter) - shifter;
  float r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  float scale = bits_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  float result = p * scale;
  return x < -87.0f ? 0.0f : result;
#endif
}

// log for the hot loops (host float): x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9) with s = (m-1)/(m+1),
// |s| <= 0.172, so the next term is below 3e-9 relative. Branch-free; meant for
// positive normal inputs (the WKV denominators are >= 1).
RWKV_HD float fast_log(float x) {
#if defined(__CUDA_ARCH__)
  return __logf(x);
#else
  const uint32_t bits = float_bits(x);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127;
  float m = bits_float((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  float p = 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return static_cast<float>(e) * 0.693147180559945309f + 2.0f * s * p;
#endif
}

// exp in the working precision: fast in float, exact in double.
RWKV_HD float exp_t(float x) { return fast_exp(x); }
RWKV_HD double exp_t(double x) { return std::exp(x); }
RWKV_HD float fast_log_t(float x) { return fast_log(x); }
RWKV_HD double fast_log_t(double x) { return std::log(x); }

// log and the accurate exp under names that resolve on host and device.
RWKV_HD float log_t(float x) {
#if defined(__CUDA_ARCH__)
  return ::logf(x);
#else
  return std::log(x);
#endif
}
RWKV_HD double log_t(double x) {
#if defined(__CUDA_ARCH__)
  return ::log(x);
#else
  return std::log(x);
#endif
}
RWKV_HD float exact_exp(float x) {
#if defined(__CUDA_ARCH__)
  return ::expf(x);
#else
  return std::exp(x);
#endif
}
RWKV_HD double exact_exp(double x) {
#if defined(__CUDA_ARCH__)
  return ::exp(x);
#else
  return std::exp(x);
#endif
}
RWKV_HD float sqrt_t(float x) {
#if defined(__CUDA_ARCH__)
  return ::sqrtf(x);
#else
  return std::sqrt(x);
#endif
}
RWKV_HD double sqrt_t(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}

}  // namespace rwkv
