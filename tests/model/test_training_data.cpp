// The training loop's data (trainer/training_data.h): data.train as one
// stream reads what RWKV-LM's sampler reads, and with data.train_weights
// every entry is a dataset of its own that supplies its share of the rows.
#include <gtest/gtest.h>

#include <algorithm>

#include "checkpoint/checkpoint_store.h"
#include "data/binidx_writer.h"
#include "model_test_util.h"
#include "trainer/config.h"
#include "trainer/frozen_parameters.h"
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

TEST(Freeze, PatternsMatchReferenceNamesAndOneMatchingNothingIsAnError) {
  const Rwkv4Shape shape{3, 8, 257, 32};
  const FrozenParameters f = frozen_parameters({"emb.weight", "blocks.0.*", "blocks.*.att.time_first"}, shape, "t.yaml");
  // blocks.0 has 20 tensors (ln0 included); time_first of blocks 1 and 2 adds 2.
  EXPECT_EQ(f.names.size(), 1u + 20u + 2u);
  EXPECT_TRUE(f.contains("blocks.0.ln0.weight"));
  EXPECT_TRUE(f.contains("blocks.2.att.time_first"));
  EXPECT_FALSE(f.contains("blocks.1.att.key.weight"));
  EXPECT_FALSE(f.contains("head.weight"));
  int64_t expected = 257 * 8 + 2 * 8;  // emb, time_first x2
  for (const Rwkv4TensorSpec& spec : rwkv4_tensor_specs(shape))
    if (spec.name.rfind("blocks.0.", 0) == 0) expected += shape_numel(spec.global_shape);
  EXPECT_EQ(f.parameters, expected);
  test::expect_error([&] { frozen_parameters({"emb.weight", "blocks.3.*"}, shape, "t.yaml"); },
                     {"t.yaml: train.freeze: 'blocks.3.*' matches no parameter of this 3-block model", "HINT"});
  test::expect_error([&] { frozen_parameters({"*"}, shape, "t.yaml"); },
                     {"t.yaml: train.freeze matches every one of the model's", "nothing would train", "HINT"});
}

TEST(Freeze, FlopsLeftOutAreTheSkippedGemmsByHand) {
  TrainConfig c = config_for("train: [x]");  // L1 C8 V257, F = 32
  c.model.n_layer = 3;
  const double C = 8, F = 32, V = 257, block = 5 * C * C + 2 * C * F;  // a block's matrix parameters
  EXPECT_EQ(frozen_flops_per_token(c), 0.0);
  c.train.freeze = {"blocks.1.*"};  // no weight gradients of block 1's matrices
  EXPECT_EQ(frozen_flops_per_token(c), 2 * block);
  c.train.freeze = {"blocks.1.att.key.weight", "head.weight"};
  EXPECT_EQ(frozen_flops_per_token(c), 2 * C * C + 2 * V * C);
  c.train.freeze = {"emb.weight", "blocks.[01].*"};  // blocks 0 and 1 run no backward at all
  EXPECT_EQ(frozen_flops_per_token(c), 4 * 2 * block);
  c.parallel.pp = 3;  // ...unless block 1 is on the second stage: it still passes its input gradient down
  EXPECT_EQ(frozen_flops_per_token(c), 4 * block + 2 * block);
}

TEST(Freeze, FrozenTensorsKeepTheirInitBitForBitAndTheRestTrains) {
  const auto dir = test::fresh_temp_dir("freeze_run");
  const std::string train = write_stream(dir, "train", 4000, 1);
  TrainConfig c = config_for("train: [" + train + "]");
  c.model.n_layer = 2;
  c.train.steps = 3;
  c.train.threads = 1;
  c.train.peak_gflops = 1;
  c.train.weight_decay = 0.1;  // decay would move a frozen matrix if its lr were not 0
  c.train.freeze = {"emb.weight", "blocks.0.*"};
  c.checkpoint.dir = (dir / "ckpt").string();
  c.checkpoint.resume = "never";
  ParameterStore trained;
  TrainOptions options;
  options.on_finish = [&](const ParameterStore& p) {
    trained = p.zeros_like();
    for (size_t i = 0; i < p.entries().size(); ++i) trained.entries()[i].value.copy_from(p.entries()[i].value);
  };
  run_training(c, options);
  const Rwkv4Shape shape{c.model.n_layer, c.model.n_embd, c.model.vocab_size, c.model.dim_ffn};
  ParameterStore init = declare_rwkv4_parameters(shape, DType::F32);
  init_rwkv4_reference(init, shape, static_cast<uint64_t>(c.train.seed), c.train.lr_init);
  ASSERT_EQ(trained.entries().size(), init.entries().size());
  int frozen = 0, moved = 0;
  for (size_t i = 0; i < init.entries().size(); ++i) {
    const std::string& name = init.entries()[i].name;
    const bool same = trained.entries()[i].value.to_vector<float>() == init.entries()[i].value.to_vector<float>();
    if (name == "emb.weight" || name.rfind("blocks.0.", 0) == 0) {
      EXPECT_TRUE(same) << name << " is frozen but changed";
      ++frozen;
    } else {
      moved += same ? 0 : 1;
    }
  }
  EXPECT_EQ(frozen, 1 + 20);
  // Their gradients were zeroed before AdamW saw them: the moments in the
  // step-3 checkpoint are 0 (and they added nothing to the clipped norm).
  const checkpoint::LoadedCheckpoint saved(c.checkpoint.dir + "/step_00000003");
  for (const char* name : {"emb.weight", "blocks.0.att.key.weight", "blocks.1.att.key.weight"}) {
    const NamedTensor& e = *std::find_if(init.entries().begin(), init.entries().end(),
                                         [&](const NamedTensor& x) { return x.name == name; });
    Tensor m = Tensor::empty(e.value.shape(), DType::F32), v = Tensor::empty(e.value.shape(), DType::F32);
    saved.read_into(name, "adam_m", m);
    saved.read_into(name, "adam_v", v);
    const std::vector<float> mv = m.to_vector<float>(), vv = v.to_vector<float>();
    const bool zeros = std::all_of(mv.begin(), mv.end(), [](float x) { return x == 0.0f; }) &&
                       std::all_of(vv.begin(), vv.end(), [](float x) { return x == 0.0f; });
    EXPECT_EQ(zeros, std::string(name) != "blocks.1.att.key.weight") << name;
  }
  EXPECT_GE(moved, 15) << "the unfrozen tensors should train";  // 18 in block 1 + ln_out + head, most of them move
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
