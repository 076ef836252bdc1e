#include "trainer/sampling.h"

#include <map>

#include "test_util.h"

namespace rwkv {
namespace {

TEST(Sampling, GreedyAndNucleus) {
  const std::vector<float> logits = {0.0f, 3.0f, 2.9f, -5.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits, {0.0, 0.9}, rng), 1);  // temperature 0: argmax
  // top_p small: only the single most likely token survives.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, {1.0, 0.01}, rng), 1);
  // top_p 0.85 keeps tokens 1 and 2 (0.51 + 0.46 of the mass) and drops 0 and 3.
  std::map<int32_t, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits, {1.0, 0.85}, rng)];
  EXPECT_EQ(seen.count(0) + seen.count(3), 0u);
  EXPECT_GT(seen[1], 800);
  EXPECT_GT(seen[2], 700);
  // The same seed gives the same sequence.
  std::mt19937_64 a(7), b(7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, {1.0, 1.0}, a), sample_token(logits, {1.0, 1.0}, b));
  test::expect_error([&] { sample_token(logits, {1.0, 0.0}, rng); }, {"top_p", "(0, 1]"});
}

}  // namespace
}  // namespace rwkv
