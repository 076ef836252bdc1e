// Dropout masks as a pure function of where an element is, not of the order
// anything runs in: element (sample g, position t, channel c) at dropout site
// s keeps its value, scaled by 1 / (1 - p), exactly when
//
//     h = mix(mix(seed ^ mix(s * 2^40 ^ g * phi)) ^ (t * 2^32 ^ c))
//     keep  <=>  floor(h / 2^32) >= threshold = round(p * 2^32)
//
// (mix: splitmix64's finaliser, phi: 0x9E3779B97F4A7C15). g is the global
// sample index of the data pipeline (data/sampler.h), so every parallel
// layout, a resumed run and a recomputed block draw the same mask, and
// backward needs no stored mask: applying the same mask to the gradient is
// the derivative (y = x m / (1 - p)  =>  dx = dy m / (1 - p)).
#pragma once

#include <cstdint>

#include "core/hd.h"

namespace rwkv {

struct DropoutKey {
  float p = 0.0f;             // drop probability, in [0, 1)
  uint64_t seed = 0;          // the run's seed
  uint32_t site = 0;          // which dropout in the model (embedding, each block's two)
  uint64_t first_sample = 0;  // global sample index of row 0 of the batch
  uint64_t sample_stride = 1; // between rows b and b + 1 (the data-parallel size)
};

RWKV_HD uint64_t dropout_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// round(p * 2^32), as a 64-bit count so that p close to 1 cannot wrap.
RWKV_HD uint64_t dropout_threshold(float p) {
  return static_cast<uint64_t>(static_cast<double>(p) * 4294967296.0 + 0.5);
}

// 1 / (1 - p), the survivors' factor (in double; backends round it once to their type).
RWKV_HD double dropout_scale(float p) { return 1.0 / (1.0 - static_cast<double>(p)); }

// Whether element (row b, position t, channel c) survives.
RWKV_HD bool dropout_keeps(const DropoutKey& key, uint64_t threshold, uint64_t row, uint64_t t, uint64_t c) {
  const uint64_t sample = key.first_sample + row * key.sample_stride;
  const uint64_t per_sample =
      dropout_mix(key.seed ^ dropout_mix((static_cast<uint64_t>(key.site) << 40) ^ (sample * 0x9E3779B97F4A7C15ULL)));
  const uint64_t h = dropout_mix(per_sample ^ ((t << 32) ^ c));
  return (h >> 32) >= threshold;
}

}  // namespace rwkv
