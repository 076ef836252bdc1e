// The training loop's data (trainer/training_data.h): data.train as one
// stream reads what RWKV-LM's sampler reads, and with data.train_weights
// every entry is a dataset of its own that supplies its share of the rows.
#include <gtest/gtest.h>

#include "data/binidx_writer.h"
#include "model_test_util.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"
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

TEST(TrainingData, EachValidationEntryIsEvaluatedOnItsOwnAndTheirMeanIsTheValLoss) {
  const auto dir = test::fresh_temp_dir("training_data_valid");
  const std::string train = write_stream(dir, "train", 4000, 1);
  // Two full micro-batches of 4 x 8-token windows in "web" (eval_batches 2),
  // one in "code" (41 tokens: 5 windows, the fifth would need padding).
  const std::string web = write_stream(dir, "web", 4000, 60), code = write_stream(dir, "code", 41, 120);
  auto run = [&](const std::string& valid) {
    TrainConfig c = config_for("train: [" + train + "], valid: [" + valid + "]");
    c.train.steps = 2;
    c.train.eval_interval = 2;
    c.train.eval_batches = 2;
    c.train.threads = 1;
    c.train.peak_gflops = 1;
    c.checkpoint.dir = (dir / "ckpt").string();
    c.checkpoint.resume = "never";
    return run_training(c, TrainOptions{});
  };
  const TrainSummary both = run(web + ", " + code), web_only = run(web), code_only = run(code);
  ASSERT_EQ(both.last_eval_losses.size(), 2u);
  // The same model (the same seed and training data) scores each set as it does alone...
  EXPECT_EQ(both.last_eval_losses[0], web_only.last_eval_loss);
  EXPECT_EQ(both.last_eval_losses[1], code_only.last_eval_loss);
  EXPECT_EQ(web_only.last_eval_losses, std::vector<double>{web_only.last_eval_loss});
  EXPECT_NE(both.last_eval_losses[0], both.last_eval_losses[1]);  // different text, different loss
  // ...and val_loss is their mean over the 2 + 1 micro-batches evaluated.
  EXPECT_DOUBLE_EQ(both.last_eval_loss, (2 * web_only.last_eval_loss + code_only.last_eval_loss) / 3);
  EXPECT_TRUE(std::isfinite(both.last_eval_loss));
}

TEST(TrainingData, ValidationSetsAreNamedByTheirLastPathComponent) {
  const auto dir = test::fresh_temp_dir("training_data_names");
  std::filesystem::create_directories(dir / "x");
  std::filesystem::create_directories(dir / "y");
  const std::string a = write_stream(dir / "x", "val", 100, 1), b = write_stream(dir / "y", "val", 100, 1);
  const std::string c = write_stream(dir, "code", 100, 1);
  const TrainConfig config = config_for("train: [" + c + "], valid: [" + a + ", " + b + ", " + c + "]");
  const std::vector<ValidationSet> sets = open_validation_sets(config);
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].name, a);  // two entries end in "val": the whole entries tell them apart
  EXPECT_EQ(sets[1].name, b);
  EXPECT_EQ(sets[2].name, "code");
  EXPECT_EQ(sets[2].data->num_tokens(), 100);
}

}  // namespace
}  // namespace rwkv::trainer
