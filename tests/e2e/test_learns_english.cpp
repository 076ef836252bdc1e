// The tiny config learns real English: LAMBADA passages (bytes tokenizer)
// prepared with the real `rwkv-data prepare`, trained by the trainer in this
// process. The validation loss must fall far below the unigram entropy of the
// validation bytes (the best any model that ignores context can do).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "data/token_dataset.h"
#include "test_util.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

// Entropy (nats) of the token distribution of a dataset.
double unigram_entropy(const data::TokenDataset& d) {
  std::vector<int32_t> tokens(static_cast<size_t>(d.num_tokens()));
  d.read(0, d.num_tokens(), tokens.data());
  std::map<int32_t, int64_t> counts;
  for (int32_t t : tokens) ++counts[t];
  double h = 0.0;
  for (const auto& [token, count] : counts) {
    const double p = static_cast<double>(count) / static_cast<double>(tokens.size());
    h -= p * std::log(p);
  }
  return h;
}

TEST(EndToEnd, TinyConfigLearnsEnglish) {
  const fs::path lambada = fs::path(RWKV_SHARED_DATA_DIR) / "lambada_test.jsonl";
  ASSERT_TRUE(fs::exists(lambada)) << lambada << " is missing: the e2e tests read ../shared/data beside the checkout";
  const fs::path dir = fs::temp_directory_path() / ("rwkv_e2e_" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  // 4600 passages to train on, the other 553 held out.
  {
    std::ifstream in(lambada);
    std::ofstream train(dir / "train.jsonl"), valid(dir / "valid.jsonl");
    std::string line;
    for (int i = 0; std::getline(in, line); ++i) (i < 4600 ? train : valid) << line << "\n";
  }
  for (const char* split : {"train", "valid"}) {
    const std::string cmd = std::string(RWKV_DATA_TOOL) + " prepare --tokenizer bytes --progress-seconds 0 --input " +
                            (dir / (std::string(split) + ".jsonl")).string() + " --output " +
                            (dir / "data" / split).string() + " > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  const trainer::TrainConfig config = trainer::load_config(
      std::string(RWKV_SOURCE_DIR) + "/configs/tiny.yaml",
      {"data.train=[" + (dir / "data" / "train").string() + "]", "data.valid=[" + (dir / "data" / "valid").string() + "]",
       "train.steps=300", "train.warmup_steps=20", "train.lr_init=2e-3", "train.lr_final=2e-4",
       "train.eval_interval=300", "train.eval_batches=16", "train.log_interval=50",
       "checkpoint.dir=" + (dir / "out").string()});
  trainer::TrainOptions options;
  options.config_path = "configs/tiny.yaml";
  const trainer::TrainSummary summary = trainer::run_training(config, options);
  const double entropy = unigram_entropy(data::TokenDataset::open((dir / "data" / "valid").string()));
  std::printf("validation loss %.4f -> %.4f nats/byte; unigram entropy of the validation bytes %.4f nats\n",
              summary.first_eval_loss, summary.last_eval_loss, entropy);
  EXPECT_NEAR(summary.first_eval_loss, std::log(257.0), 0.5);  // an untrained model is near uniform
  EXPECT_LT(summary.last_eval_loss, 0.8 * entropy);               // it learned context, not just frequencies
  EXPECT_TRUE(fs::exists(summary.weights_path));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
