// End to end on real English: LAMBADA passages (bytes tokenizer) prepared
// with the real `rwkv-data prepare`, trained by the trainer in this process,
// and the command-line tools run as a user runs them.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/device.h"
#include "checkpoint/checkpoint_store.h"
#include "core/file_io.h"
#include "data/token_dataset.h"
#include "test_util.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

using test::CommandResult;
using test::run_command;

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

class EndToEnd : public ::testing::Test {
 protected:
  // LAMBADA split into 4600 passages to train on and 553 held out, prepared once.
  static void SetUpTestSuite() {
    const fs::path lambada = fs::path(RWKV_SHARED_DATA_DIR) / "lambada_test.jsonl";
    ASSERT_TRUE(fs::exists(lambada)) << lambada << " is missing: the e2e tests read ../shared/data beside the checkout";
    dir_ = fs::temp_directory_path() / ("rwkv_e2e_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    {
      std::ifstream in(lambada);
      std::ofstream train(dir_ / "train.jsonl"), valid(dir_ / "valid.jsonl");
      std::string line;
      for (int i = 0; std::getline(in, line); ++i) (i < 4600 ? train : valid) << line << "\n";
    }
    for (const char* split : {"train", "valid"}) {
      const CommandResult r = run_command(std::string(RWKV_DATA_TOOL) + " prepare --tokenizer bytes --progress-seconds 0 --input " +
                                          (dir_ / (std::string(split) + ".jsonl")).string() + " --output " + prefix(split));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string prefix(const std::string& split) { return (dir_ / "data" / split).string(); }
  static std::vector<std::string> data_overrides() {
    return {"data.train=[" + prefix("train") + "]", "data.valid=[" + prefix("valid") + "]",
            "checkpoint.dir=" + (dir_ / "out").string()};
  }
  // The test's overrides come last, so they win over the shared ones.
  static trainer::TrainConfig tiny_config(const std::vector<std::string>& overrides) {
    std::vector<std::string> all = data_overrides();
    all.insert(all.end(), overrides.begin(), overrides.end());
    return trainer::load_config(std::string(RWKV_SOURCE_DIR) + "/configs/tiny.yaml", all);
  }
  static std::string tool(const char* name) { return (fs::path(RWKV_TRAIN_TOOL).parent_path() / name).string(); }

  static trainer::TrainOptions tiny_options() {
    trainer::TrainOptions options;
    options.config_path = "configs/tiny.yaml";
    return options;
  }

  static fs::path dir_;
};
fs::path EndToEnd::dir_;

// The validation loss must fall far below the unigram entropy of the
// validation bytes: the best any model that ignores context can do.
TEST_F(EndToEnd, TinyConfigLearnsEnglish) {
  const trainer::TrainConfig config =
      tiny_config({"train.steps=300", "train.warmup_steps=20", "train.lr_init=2e-3", "train.lr_final=2e-4",
                   "train.eval_interval=300", "train.eval_batches=16", "train.log_interval=50",
                   "checkpoint.resume=never", "checkpoint.interval=0"});
  const trainer::TrainSummary summary = trainer::run_training(config, tiny_options());
  const double entropy = unigram_entropy(data::TokenDataset::open(prefix("valid")));
  std::printf("validation loss %.4f -> %.4f nats/byte; unigram entropy of the validation bytes %.4f nats\n",
              summary.first_eval_loss, summary.last_eval_loss, entropy);
  EXPECT_NEAR(summary.first_eval_loss, std::log(257.0), 0.5);  // an untrained model is near uniform
  EXPECT_LT(summary.last_eval_loss, 0.8 * entropy);               // it learned context, not just frequencies
  ASSERT_TRUE(fs::exists(summary.weights_path));

  // rwkv-generate continues a prompt from those weights; greedy decoding is deterministic.
  const std::string generate = tool("rwkv-generate") + " --weights " + summary.weights_path +
                               " --tokenizer bytes --prompt 'She said that the' --tokens 40 --temperature 0";
  const CommandResult a = run_command(generate), b = run_command(generate);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.output.rfind("She said that the", 0), 0u) << a.output;
  EXPECT_GT(a.output.size(), std::string("She said that the\n").size()) << a.output;
  std::printf("rwkv-generate: %s", a.output.c_str());

  // rwkv-eval scores the same weights on 200 held-out LAMBADA passages: the
  // last word's negative log-likelihood must be far below the uniform
  // model's (log 257 nats a byte of " word").
  const CommandResult eval = run_command(tool("rwkv-eval") + " --weights " + summary.weights_path +
                                         " --tokenizer bytes --limit 200 --json --lambada " + (dir_ / "valid.jsonl").string());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  auto field = [&](const std::string& name) {
    const size_t at = eval.output.find("\"" + name + "\": ");
    EXPECT_NE(at, std::string::npos) << name << " in " << eval.output;
    return at == std::string::npos ? std::nan("") : std::stod(eval.output.substr(at + name.size() + 4));
  };
  const double passages = field("passages"), target_bytes = field("target_tokens"), ppl = field("perplexity");
  EXPECT_EQ(passages, 200);
  const double uniform_nll = target_bytes / passages * std::log(257.0);
  std::printf("rwkv-eval: LAMBADA last-word nll %.2f nats (uniform %.2f), accuracy %.1f%%\n", std::log(ppl), uniform_nll,
              100 * field("accuracy"));
  EXPECT_LT(std::log(ppl), 0.6 * uniform_nll) << eval.output;
}

TEST_F(EndToEnd, SameSeedSameConfigGivesBitIdenticalLosses) {
  const trainer::TrainConfig config = tiny_config({"train.steps=12", "train.warmup_steps=2", "train.log_interval=4",
                                                   "model.n_layer=2", "model.n_embd=64", "train.peak_gflops=1",
                                                   "checkpoint.resume=never"});
  const trainer::TrainSummary first = trainer::run_training(config, tiny_options());
  const trainer::TrainSummary second = trainer::run_training(config, tiny_options());
  ASSERT_EQ(first.losses.size(), 12u);
  EXPECT_EQ(first.losses, second.losses);
}

// A run resumed from a checkpoint continues with exactly the losses of the
// run that never stopped (CPU: bit-identical).
TEST_F(EndToEnd, ResumedRunIsBitIdenticalToUninterruptedRun) {
  const std::string ckpt = (dir_ / "resume_ckpt").string();
  const trainer::TrainConfig config =
      tiny_config({"train.steps=16", "train.warmup_steps=2", "train.log_interval=4", "model.n_layer=2",
                   "model.n_embd=64", "train.peak_gflops=1", "checkpoint.interval=8", "checkpoint.keep_last=0",
                   "checkpoint.dir=" + ckpt});
  const trainer::TrainSummary whole = trainer::run_training(config, tiny_options());
  ASSERT_EQ(whole.losses.size(), 16u);
  ASSERT_TRUE(fs::exists(fs::path(ckpt) / "step_00000008" / "COMMITTED"));
  fs::remove_all(fs::path(ckpt) / "step_00000016");  // as if the run had died after step 8's checkpoint
  const trainer::TrainSummary resumed = trainer::run_training(config, tiny_options());
  ASSERT_EQ(resumed.losses.size(), 8u);
  EXPECT_EQ(resumed.losses, std::vector<double>(whole.losses.begin() + 8, whole.losses.end()));
  // Asynchronous saves give the same checkpoints.
  fs::remove_all(ckpt);
  trainer::TrainConfig async_config = config;
  async_config.checkpoint.async = true;
  const trainer::TrainSummary async_run = trainer::run_training(async_config, tiny_options());
  EXPECT_EQ(async_run.losses, whole.losses);
  ASSERT_TRUE(fs::exists(fs::path(ckpt) / "step_00000016" / "COMMITTED"));
}

// checkpoint.interval_minutes: a tiny interval saves after every step, a long
// one only at the end (the clock is the only trigger: interval is 0).
TEST_F(EndToEnd, CheckpointsByMinutes) {
  for (const auto& [minutes, expected] : {std::pair<std::string, std::vector<int64_t>>{"1e-9", {1, 2, 3}},
                                          std::pair<std::string, std::vector<int64_t>>{"600", {3}}}) {
    const std::string ckpt = (dir_ / ("minutes_" + minutes)).string();
    const trainer::TrainConfig config =
        tiny_config({"train.steps=3", "train.warmup_steps=1", "model.n_layer=1", "model.n_embd=32",
                     "train.peak_gflops=1", "checkpoint.interval=0", "checkpoint.interval_minutes=" + minutes,
                     "checkpoint.keep_last=0", "checkpoint.resume=never", "checkpoint.dir=" + ckpt});
    trainer::run_training(config, tiny_options());
    EXPECT_EQ(checkpoint::CheckpointStore(ckpt, 0, 0).committed_steps(), expected) << "interval_minutes " << minutes;
  }
}

// The main job's way of running: rwkv-launch starts the controller and the
// trainer; the trainer sends heartbeats, writes checkpoints when the
// controller asks, and the controller commits them (and keeps the last 2).
TEST_F(EndToEnd, LaunchedWithTheControllerCheckpointsAreCommitted) {
  const fs::path ckpt = dir_ / "launch_ckpt", state = dir_ / "launch_state";
  std::string command = std::string(RWKV_LAUNCH_TOOL) + " --job e2e --np 1 --launcher local --poll 0.2 --state-dir " +
                        state.string() + " -- " + tool("rwkv-train") + " --config " + RWKV_SOURCE_DIR + "/configs/tiny.yaml";
  for (const std::string& o : data_overrides()) command += " --set '" + o + "'";
  command += " --set train.steps=12 --set train.warmup_steps=2 --set model.n_layer=2 --set model.n_embd=64"
             " --set checkpoint.interval=4 --set checkpoint.keep_last=2 --set train.peak_gflops=1"
             " --set checkpoint.resume=never --set controller.heartbeat_s=0.05 --set checkpoint.dir=" + ckpt.string();
  const CommandResult r = run_command(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("completed"), std::string::npos) << r.output;
  // Which interval checkpoints the controller asks for depends on how fast
  // the steps go (it asks a few heartbeats ahead); the final one is always
  // taken, every committed one verifies, and retention keeps at most 2.
  ASSERT_TRUE(fs::exists(ckpt / "step_00000012" / "COMMITTED")) << r.output;
  int committed = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(ckpt)) {
    if (!fs::exists(e.path() / "COMMITTED")) continue;
    ++committed;
    EXPECT_NO_THROW(checkpoint::LoadedCheckpoint c(e.path().string())) << e.path();
  }
  EXPECT_LE(committed, 2);
  const std::string ranks_log = rwkv::read_file((state / "ranks.log").string());
  EXPECT_NE(ranks_log.find("step=12/12"), std::string::npos) << ranks_log;
  EXPECT_NE(ranks_log.find("registered with"), std::string::npos) << ranks_log;
}

// Bad input ends with one clear error line and a non-zero exit.
TEST_F(EndToEnd, BadConfigsFailClearly) {
  const std::string train = tool("rwkv-train") + " --config " + RWKV_SOURCE_DIR + "/configs/tiny.yaml";
  std::string data_args;
  for (const std::string& o : data_overrides()) data_args += " --set '" + o + "'";
  struct Case {
    std::string args;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases = {
      {data_args + " --set train.micro_bsz=4", {"micro_bsz", "micro_batch"}},
      {data_args + " --set parallel.tp=3", {"parallel.tp", "n_embd"}},
      {" --set 'data.train=[/nonexistent/shard]'", {"/nonexistent/shard"}},
      {data_args + " --set model.vocab_size=100", {"vocab_size", "257"}},
      {" --bogus", {"unknown argument '--bogus'"}},
  };
  std::vector<Case> all = cases;
  if (!cuda_available()) all.push_back({data_args + " --set device=cuda", {"device is cuda", "HINT"}});
  for (const Case& c : all) {
    const CommandResult r = run_command(train + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
    for (const std::string& f : c.fragments) EXPECT_NE(r.output.find(f), std::string::npos) << c.args << "\n" << r.output;
  }
  const CommandResult missing = run_command(tool("rwkv-train") + " --config /nonexistent.yaml");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("/nonexistent.yaml"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace rwkv
