// The training loop's data (trainer/training_data.h): data.train as one
// stream reads what RWKV-LM's sampler reads, and with data.train_weights
// every entry is a dataset of its own that supplies its share of the rows.
#include <gtest/gtest.h>

#include "data/binidx_writer.h"
#include "model_test_util.h"
#include "trainer/config.h"
#include "trainer/training_data.h"

namespace rwkv::trainer {
namespace {

// One document of `tokens` tokens: first, first + 1, ... (modulo 50, so they stay bytes).
std::string write_stream(const std::filesystem::path& dir, const std::string& name, int tokens, int first) {
  const std::string prefix = (dir / name).string();
  data::BinIdxWriter writer(prefix, data::TokenDType::U16);
  std::vector<int32_t> doc;
  for (int i = 0; i < tokens; ++i) doc.push_back(first + i % 50);
  writer.add_document(doc);
  writer.commit();
  return prefix;
}

TrainConfig config_for(const std::string& data_yaml) {
  return load_config_text("model: {n_layer: 1, n_embd: 8, vocab_size: 257, ctx_len: 8}\n"
                          "data: {" + data_yaml + ", tokenizer: bytes}\ntrain: {steps: 50, micro_batch: 4}\n",
                          "test.yaml");
}

TEST(TrainingData, MixtureRowsComeFromEachEntryInItsShare) {
  const auto dir = test::fresh_temp_dir("training_data_mix");
  const std::string a = write_stream(dir, "a", 4000, 1), b = write_stream(dir, "b", 2000, 100);
  const TrainConfig config = config_for("train: [" + a + ", " + b + "], train_weights: [3, 1]");
  const data::BatchLayout layout{8, 4, 8, 2};
  const TrainingData data(config, layout, "test.yaml");
  // 3 : 1 deals a, a, b, a in every run of four samples (blended_sampler.h),
  // so 400 samples hold exactly 100 rows of b.
  int from_b = 0;
  std::vector<int32_t> rows(4 * 9);
  for (int64_t step = 0; step < 50; ++step) {
    for (int64_t rank = 0; rank < 2; ++rank) {
      data.fill(step, 0, rank, rows.data());
      for (int row = 0; row < 4; ++row) from_b += rows[row * 9] >= 100 ? 1 : 0;
    }
  }
  EXPECT_EQ(from_b, 100);
  const std::vector<std::string> lines = data.describe(400);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(a + ": 4000 tokens in 1 shard(s), weight 3 = 75% of samples"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("weight 1 = 25% of samples, magic-prime order (p = 239 windows an epoch)"), std::string::npos)
      << lines[1];
}

TEST(TrainingData, OneStreamReadsWhatTheMagicPrimeSamplerReads) {
  const auto dir = test::fresh_temp_dir("training_data_stream");
  const std::string a = write_stream(dir, "a", 4000, 1), b = write_stream(dir, "b", 2000, 100);
  const TrainConfig config = config_for("train: [" + a + ", " + b + "]");
  const data::BatchLayout layout{8, 4, 4, 1};
  const TrainingData data(config, layout, "test.yaml");
  const data::TokenDataset stream(std::vector<std::string>{a, b}, 257);
  const data::MagicPrimeSampler reference(stream, layout);
  std::vector<int32_t> got(4 * 9), want(4 * 9);
  for (int64_t step : {0, 1, 17, 5000}) {
    data.fill(step, 0, 0, got.data());
    reference.fill(step, 0, 0, want.data());
    EXPECT_EQ(got, want) << "step " << step;
  }
  EXPECT_NE(data.describe(400).at(0).find("2 entries of data.train: 6000 tokens in 2 shard(s), magic-prime order"),
            std::string::npos);
}

TEST(TrainingData, AnEntryTooSmallForTheMixtureIsNamed) {
  const auto dir = test::fresh_temp_dir("training_data_small");
  const std::string a = write_stream(dir, "a", 4000, 1), b = write_stream(dir, "tiny", 20, 100);
  const TrainConfig config = config_for("train: [" + a + ", " + b + "], train_weights: [1, 1]");
  try {
    TrainingData data(config, data::BatchLayout{8, 4, 4, 1}, "test.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("test.yaml: data.train_weights: data mixture: dataset " + b + " has 20 tokens"), std::string::npos)
        << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace rwkv::trainer
