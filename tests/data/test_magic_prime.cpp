// RWKV-LM's magic prime and its sampler arithmetic, against values computed
// with RWKV-LM's own formulas (Python, exact integers).
#include <gtest/gtest.h>

#include "data/magic_prime.h"

namespace rwkv::data {
namespace {

TEST(MagicPrime, Primality) {
  EXPECT_FALSE(is_prime(0));
  EXPECT_FALSE(is_prime(1));
  EXPECT_TRUE(is_prime(2));
  EXPECT_TRUE(is_prime(47));
  EXPECT_FALSE(is_prime(49));
  EXPECT_TRUE(is_prime(2926181));
  EXPECT_FALSE(is_prime(3215031751ull));              // strong pseudoprime to bases 2, 3, 5, 7
  EXPECT_TRUE(is_prime(18446744073709551557ull));     // largest 64-bit prime
  EXPECT_FALSE(is_prime(18446744073709551557ull - 2));
}

TEST(MagicPrime, LargestPrimeTwoModThreeBelowTheChunkCount) {
  EXPECT_EQ(magic_prime_for(200499, 4096), 47u);              // RWKV-LM's demo data
  EXPECT_EQ(magic_prime_for(1498226207, 512), 2926181u);      // minipile, RWKV-LM README
  EXPECT_EQ(magic_prime_for(332115325534ull, 4096), 81082817u);  // the Pile, 20B tokenizer
  EXPECT_EQ(magic_prime_for(423797, 512), 821u);              // LAMBADA with the 20B tokenizer
  EXPECT_EQ(magic_prime_for(2000, 10), 197u);
  EXPECT_EQ(magic_prime_for(29, 10), 0u);                     // fewer than 3 windows
}

}  // namespace
}  // namespace rwkv::data
