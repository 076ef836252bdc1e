// RWKV-LM's "magic prime": the sampler's period. For a stream of T tokens and a
// context of L, RWKV-LM (make_data.py) takes the largest prime p with
// p % 3 == 2 and p <= floor(T / L) - 1. The -1 keeps the last window (start
// (p-1)*L, length L+1) inside the data. p % 3 == 2 makes x -> x^3 a bijection
// modulo p (gcd(3, p-1) = 1), which the sampler relies on.
#pragma once

#include <cstdint>

namespace rwkv::data {

// 128-bit products for modular arithmetic (__extension__: a GCC/Clang builtin type).
__extension__ typedef unsigned __int128 uint128;

bool is_prime(uint64_t n);
// 0 when no such prime exists (fewer than 3 windows' worth of tokens).
uint64_t magic_prime_for(uint64_t num_tokens, uint64_t ctx_len);

// RWKV-LM's multiplier: int(p * (sqrt(5) - 1) / 2), in double precision as
// Python computes it.
uint64_t magic_prime_factor(uint64_t prime);
// The chunk that global sample g reads: (factor * (1 + g)^3) mod p, computed
// modulo p in 128 bits (no overflow for any g).
uint64_t magic_prime_chunk(uint64_t prime, uint64_t factor, uint64_t global_sample);

}  // namespace rwkv::data
