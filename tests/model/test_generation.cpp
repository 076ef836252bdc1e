// Text generation (trainer/generation.h) and its sampling pieces: top-k,
// ChatRWKV's repetition penalties worked by hand, several samples in one
// batch row by row like single runs, and the stop text.
#include "trainer/generation.h"

#include <map>
#include <set>

#include "data/byte_tokenizer.h"
#include "model_test_util.h"
#include "test_util.h"

namespace rwkv {
namespace {

TEST(Sampling, TopKKeepsOnlyTheKMostLikely) {
  const std::vector<float> logits = {0.0f, 3.0f, 2.9f, -5.0f, 2.0f};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, {1.0, 1.0, 1}, rng), 1);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits, {1.0, 1.0, 2}, rng)];
  EXPECT_EQ(seen.size(), 2u);  // ids 1 and 2 only
  EXPECT_GT(seen[1], 800);
  EXPECT_GT(seen[2], 700);
  seen.clear();
  for (int i = 0; i < 4000; ++i) ++seen[sample_token(logits, {1.0, 1.0, 0}, rng)];
  EXPECT_GT(seen[0], 0);  // k = 0: no limit; ids 0 (p = 0.02) and 4 (0.16) come up too
  EXPECT_GT(seen[4], 0);
  test::expect_error([&] { sample_token(logits, {1.0, 1.0, -1}, rng); }, {"top_k", ">= 0"});
}

TEST(Sampling, RepetitionPenaltyFollowsChatRwkvsCounts) {
  RepetitionPenalty penalty({/*presence=*/0.25, /*frequency=*/0.5, /*decay=*/0.5});
  // After 5, 5, 7 with decay 0.5: c_5 = (1 x 0.5 + 1) x 0.5 = 0.75, c_7 = 1.
  for (int32_t t : {5, 5, 7}) penalty.record(t);
  EXPECT_EQ(penalty.counts(), (std::map<int32_t, double>{{5, 0.75}, {7, 1.0}}));
  std::vector<float> logits(10, 1.0f);
  penalty.apply(logits);
  for (int32_t t = 0; t < 10; ++t) {
    const float want = t == 5 ? 1.0f - (0.25f + 0.5f * 0.75f) : t == 7 ? 1.0f - (0.25f + 0.5f) : 1.0f;
    EXPECT_FLOAT_EQ(logits[static_cast<size_t>(t)], want) << "token " << t;
  }
  std::vector<float> short_row(6, 0.0f);  // ids past the row (7) are skipped
  penalty.apply(short_row);
  EXPECT_FLOAT_EQ(short_row[5], -(0.25f + 0.5f * 0.75f));
  RepetitionPenalty off({0.0, 0.0, 0.996});
  off.record(3);
  std::vector<float> untouched(5, 2.0f);
  off.apply(untouched);
  EXPECT_EQ(untouched, std::vector<float>(5, 2.0f));
  test::expect_error([] { RepetitionPenalty({0.1, 0.1, 1.5}); }, {"decay", "[0, 1]"});
}

class Generation : public ::testing::Test {
 protected:
  Generation() : model_(Rwkv4Shape{2, 16, 257, 32}, DType::F32) { test::fill_random(model_.params(), 11, -0.6, 0.6); }
  std::vector<std::string> run(GenerationOptions options, const std::string& prompt = "Hello") {
    return generate(model_, tokenizer_, prompt, options);
  }
  Rwkv4Model model_;
  data::ByteTokenizer tokenizer_;
};

TEST_F(Generation, EachSampleOfABatchIsTheSingleRunWithItsSeed) {
  GenerationOptions options;
  options.max_tokens = 24;
  options.samples = 3;
  options.seed = 10;
  options.sampling = {1.0, 1.0, 0};
  const std::vector<std::string> batch = run(options);
  ASSERT_EQ(batch.size(), 3u);
  options.samples = 1;
  for (uint64_t i = 0; i < 3; ++i) {
    options.seed = 10 + i;
    EXPECT_EQ(run(options).at(0), batch[i]) << "sample " << i;
  }
  EXPECT_NE(batch[0], batch[1]);  // other seeds, other text
}

TEST_F(Generation, StopTextEndsTheSampleAndIsLeftOut) {
  GenerationOptions options;
  options.max_tokens = 40;
  options.sampling.temperature = 0.0;
  const std::string full = run(options).at(0);
  ASSERT_GE(full.size(), 12u) << "the random model stopped early";
  const std::string stop = full.substr(6, 3);
  options.stop = stop;
  std::string streamed;
  options.samples = 2;
  const std::vector<std::string> stopped =
      generate(model_, tokenizer_, "Hello", options, [&](int64_t sample, const std::string& text) {
        if (sample == 0) streamed += text;
        EXPECT_EQ(text.find(stop), std::string::npos) << "the sink saw the stop text";
      });
  EXPECT_EQ(stopped.at(0), full.substr(0, full.find(stop)));
  EXPECT_EQ(stopped.at(1), stopped.at(0));  // greedy: every sample alike
  EXPECT_EQ(streamed, stopped.at(0));
}

TEST_F(Generation, PresencePenaltyStopsRepeats) {
  GenerationOptions options;
  options.max_tokens = 60;
  options.sampling.temperature = 0.0;
  auto distinct = [](const std::string& text) { return std::set<char>(text.begin(), text.end()).size(); };
  const std::string plain = run(options).at(0);
  ASSERT_LT(distinct(plain), plain.size()) << "greedy without penalty already never repeats: the test shows nothing";
  options.penalty = {/*presence=*/1e6, /*frequency=*/0.0, /*decay=*/1.0};
  const std::string penalised = run(options).at(0);
  EXPECT_EQ(distinct(penalised), penalised.size()) << penalised;  // a byte once used is never the argmax again
  EXPECT_GT(penalised.size(), distinct(plain)) << penalised;  // it ran on past the plain run's repertoire
}

}  // namespace
}  // namespace rwkv
