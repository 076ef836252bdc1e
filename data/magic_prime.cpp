#include "data/magic_prime.h"

#include <cmath>

#include "core/error.h"

namespace rwkv::data {

namespace {
uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>((static_cast<uint128>(a) * b) % m);
}
uint64_t pow_mod(uint64_t base, uint64_t exponent, uint64_t m) {
  uint64_t result = 1 % m;
  base %= m;
  while (exponent > 0) {
    if (exponent & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exponent >>= 1;
  }
  return result;
}
}  // namespace

// Deterministic Miller-Rabin: these bases decide every n < 2^64.
bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t p : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    if (n % p == 0) return n == p;
  }
  uint64_t d = n - 1;
  int r = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++r;
  }
  for (uint64_t a : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    uint64_t x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < r; ++i) {
      x = mul_mod(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

uint64_t magic_prime_for(uint64_t num_tokens, uint64_t ctx_len) {
  RWKV_CHECK(ctx_len > 0, "magic prime: ctx_len must be positive");
  // RWKV-LM requires at least 3 windows' worth of data.
  if (num_tokens < 3 * ctx_len) return 0;
  uint64_t n_chunk = num_tokens / ctx_len - 1;
  for (uint64_t candidate = n_chunk; candidate >= 2; --candidate) {
    if (candidate % 3 == 2 && is_prime(candidate)) return candidate;
  }
  return 0;
}

uint64_t magic_prime_factor(uint64_t prime) {
  return static_cast<uint64_t>(static_cast<double>(prime) * ((std::sqrt(5.0) - 1.0) / 2.0));
}

uint64_t magic_prime_chunk(uint64_t prime, uint64_t factor, uint64_t global_sample) {
  uint64_t ii = static_cast<uint64_t>((static_cast<uint128>(global_sample) + 1) % prime);
  uint64_t cube = mul_mod(mul_mod(ii, ii, prime), ii, prime);
  return mul_mod(factor % prime, cube, prime);
}

}  // namespace rwkv::data
