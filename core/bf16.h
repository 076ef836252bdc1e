// bfloat16: the top 16 bits of an IEEE float. Conversion rounds to nearest,
// ties to even, and keeps NaN a NaN (a plain truncation could turn a NaN with
// only low mantissa bits into infinity). Shared by host and device code so the
// CPU tests pin down exactly what the GPU stores.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/hd.h"

namespace rwkv {

struct bf16 {
  uint16_t bits;
};

RWKV_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

RWKV_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

RWKV_HD bf16 float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};  // quiet NaN
  // Round to nearest even: add 0x7fff plus the lowest kept bit, then truncate.
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

RWKV_HD float bf16_to_float(bf16 h) { return bits_float(static_cast<uint32_t>(h.bits) << 16); }

// Loads and stores that let one template serve float and bf16 buffers.
RWKV_HD float load_as_float(float x) { return x; }
RWKV_HD float load_as_float(bf16 x) { return bf16_to_float(x); }
RWKV_HD double load_as_float(double x) { return x; }
template <typename T> RWKV_HD T store_from_float(float x);
template <> RWKV_HD float store_from_float<float>(float x) { return x; }
template <> RWKV_HD bf16 store_from_float<bf16>(float x) { return float_to_bf16(x); }

}  // namespace rwkv
