// Loading: defaults, derived values, overrides, the canonical dump and digest.
#include <gtest/gtest.h>

#include <set>

#include "config_test_util.h"

namespace rwkv::trainer {
namespace {

using test::kMinimalYaml;
using test::minimal_with;

TEST(ConfigLoad, MinimalConfigGetsTheReferenceDefaults) {
  const TrainConfig c = load_config_text(kMinimalYaml, "test.yaml");
  EXPECT_EQ(c.model.n_layer, 2);
  EXPECT_EQ(c.model.n_embd, 32);
  EXPECT_EQ(c.model.dim_ffn, 4 * 32);  // RWKV-4: the channel mix is 4x wide
  EXPECT_EQ(c.data.train, std::vector<std::string>{"shard"});
  EXPECT_TRUE(c.data.valid.empty());
  EXPECT_EQ(c.data.tokenizer, "bytes");
  EXPECT_EQ(c.data.sampler, SamplerKind::MagicPrime);
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_EQ(c.train.tokens, 0);
  // RWKV-LM RWKV-v4neo/train.py defaults.
  EXPECT_EQ(c.train.lr_init, 6e-4);
  EXPECT_EQ(c.train.lr_final, 1e-5);
  EXPECT_EQ(c.train.beta1, 0.9);
  EXPECT_EQ(c.train.beta2, 0.99);
  EXPECT_EQ(c.train.adam_eps, 1e-8);
  EXPECT_EQ(c.train.weight_decay, 0.0);
  EXPECT_EQ(c.train.grad_clip, 1.0);
  EXPECT_EQ(c.train.lr_schedule, LrDecay::Exponential);
  EXPECT_TRUE(c.train.l2wrap);
  EXPECT_TRUE(c.train.layerwise_lr);
  EXPECT_EQ(c.parallel.dp * c.parallel.tp * c.parallel.pp, 1);
  EXPECT_EQ(c.device, DeviceKind::Cpu);
  EXPECT_FALSE(c.controller.enabled);
}

TEST(ConfigLoad, ReadsEveryKindOfValue) {
  const std::string yaml = std::string(kMinimalYaml) +
                           "parallel:\n  schedule: gpipe\n  zero: true\n"
                           "checkpoint:\n  dir: \"out dir/ckpt\"\n  async: True\n"
                           "controller:\n  enabled: true\n  address: \"[::1]:50051\"\n  heartbeat_s: 2.5\n"
                           "device: cuda\n";
  const TrainConfig c = load_config_text(yaml, "test.yaml");
  EXPECT_EQ(c.parallel.schedule, PipelineSchedule::GPipe);
  EXPECT_TRUE(c.parallel.zero);
  EXPECT_EQ(c.checkpoint.dir, "out dir/ckpt");
  EXPECT_TRUE(c.checkpoint.async);
  EXPECT_EQ(c.controller.address, "[::1]:50051");
  EXPECT_EQ(c.controller.heartbeat_s, 2.5);
  EXPECT_EQ(c.device, DeviceKind::Cuda);
}

TEST(ConfigLoad, NumbersInEveryReasonableSpelling) {
  // Whole numbers written as floats are integers; floats take exponents.
  std::string yaml = kMinimalYaml;
  yaml.replace(yaml.find("steps: 10"), 9, "tokens: 3.2e4");
  yaml += "  lr_init: 3E-4\n  lr_final: +0.00001\n  seed: 1e3\n";
  const TrainConfig c = load_config_text(yaml, "test.yaml");
  EXPECT_EQ(c.train.tokens, 32000);
  EXPECT_EQ(c.train.lr_init, 3e-4);
  EXPECT_EQ(c.train.lr_final, 1e-5);
  EXPECT_EQ(c.train.seed, 1000);
}

TEST(ConfigLoad, OneShardNeedsNoBrackets) {
  std::string yaml = kMinimalYaml;
  yaml.replace(yaml.find("[shard]"), 7, "data/one_shard");
  EXPECT_EQ(load_config_text(yaml, "test.yaml").data.train, std::vector<std::string>{"data/one_shard"});
}

TEST(ConfigLoad, NullSectionIsEmpty) {
  const TrainConfig c = load_config_text(std::string(kMinimalYaml) + "controller:\n", "test.yaml");
  EXPECT_FALSE(c.controller.enabled);
}

TEST(ConfigLoad, TokensRoundUpToWholeSteps) {
  std::string yaml = kMinimalYaml;
  yaml.replace(yaml.find("steps: 10"), 9, "tokens: 1000\n  micro_batch: 2\n  grad_accum: 3");
  const TrainConfig c = load_config_text(yaml, "test.yaml");
  EXPECT_EQ(global_batch(c), 6);
  EXPECT_EQ(tokens_per_step(c), 6 * 16);
  EXPECT_EQ(total_steps(c), 11);  // ceil(1000 / 96)
  const TrainConfig dp2 = load_config_text(yaml, "test.yaml", {"parallel.dp=2"});
  EXPECT_EQ(global_batch(dp2), 12);
  EXPECT_EQ(total_steps(dp2), 6);  // ceil(1000 / 192)
}

TEST(ConfigLoad, OverridesReplaceAddAndRemoveKeys) {
  const TrainConfig c = load_config_text(
      kMinimalYaml, "test.yaml",
      {"train.lr_init=3e-4", "train.micro_batch = 4", "data.valid=[v1, v2]", "data.train=[a, b, c]", "device=cuda",
       "checkpoint.dir=runs/x", "parallel.schedule=gpipe", "train.l2wrap=false", "model.dim_ffn=96"});
  EXPECT_EQ(c.train.lr_init, 3e-4);
  EXPECT_EQ(c.train.micro_batch, 4);
  EXPECT_EQ(c.data.valid, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(c.data.train, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.device, DeviceKind::Cuda);
  EXPECT_EQ(c.checkpoint.dir, "runs/x");
  EXPECT_EQ(c.parallel.schedule, PipelineSchedule::GPipe);
  EXPECT_FALSE(c.train.l2wrap);
  EXPECT_EQ(c.model.dim_ffn, 96);

  // An empty value (or ~) removes the key: steps out, tokens in.
  const TrainConfig t = load_config_text(kMinimalYaml, "test.yaml", {"train.steps=", "train.tokens=4096"});
  EXPECT_EQ(t.train.steps, 0);
  EXPECT_EQ(t.train.tokens, 4096);
  const TrainConfig d = load_config_text(minimal_with("train", "seed: 7"), "test.yaml", {"train.seed=~"});
  EXPECT_EQ(d.train.seed, 0);
  // The last override of a key wins.
  EXPECT_EQ(load_config_text(kMinimalYaml, "test.yaml", {"train.steps=5", "train.steps=6"}).train.steps, 6);
}

TEST(ConfigLoad, CanonicalDumpRoundTrips) {
  // Awkward values: tiny and huge floats, 0, strings YAML would misread unquoted.
  const TrainConfig c = load_config_text(
      kMinimalYaml, "test.yaml",
      {"train.lr_init=0.1", "train.adam_eps=1e-18", "train.weight_decay=1e20", "train.grad_clip=0",
       "data.tokenizer=hf:we\"ird\\path.json", "data.valid=[\"a: b\", '#c']", "checkpoint.resume=never",
       "controller.token_file=tok en"});
  const std::string dump = config_to_yaml(c);
  const TrainConfig back = load_config_text(dump, "dump.yaml");
  EXPECT_TRUE(back == c) << dump;
  EXPECT_EQ(config_to_yaml(back), dump);
  EXPECT_EQ(config_digest(back), config_digest(c));
  // Every key appears (except an unset steps/tokens), floats have a '.'.
  for (const std::string& key : config_keys()) {
    const std::string name = key.substr(key.find('.') + 1);
    if (name == "tokens") continue;
    EXPECT_NE(dump.find(name + ": "), std::string::npos) << key << " missing from\n" << dump;
  }
  EXPECT_NE(dump.find("grad_clip: 0.0\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("adam_eps: 1.0e-18\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("weight_decay: 1.0e+20\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("lr_init: 0.1\n"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("tokens:"), std::string::npos) << dump;
}

TEST(ConfigLoad, DigestDependsOnMeaningNotSpelling) {
  const TrainConfig a = load_config_text(kMinimalYaml, "a.yaml");
  // The same config in flow style, other order, explicit defaults, comments.
  const TrainConfig b = load_config_text(
      "# same run\n"
      "train: {steps: 10, lr_init: 0.0006, beta1: 9e-1}\n"
      "data: {train: shard, tokenizer: bytes}\n"
      "model: {ctx_len: 16, vocab_size: 257, n_embd: 32, n_layer: 2, dim_ffn: 128}\n",
      "b.yaml");
  EXPECT_TRUE(a == b);
  EXPECT_EQ(config_digest(a), config_digest(b));
  EXPECT_EQ(config_digest_hex(a).size(), 16u);
  EXPECT_EQ(config_digest_hex(a).find_first_not_of("0123456789abcdef"), std::string::npos);

  const TrainConfig c = load_config_text(kMinimalYaml, "a.yaml", {"train.seed=1"});
  EXPECT_FALSE(a == c);
  EXPECT_NE(config_digest(a), config_digest(c));
}

TEST(ConfigLoad, DifferencesNameEachChangedKeyWithBothValues) {
  const TrainConfig before = load_config_text(kMinimalYaml, "a.yaml");
  EXPECT_TRUE(config_differences(before, before).empty());
  const TrainConfig after = load_config_text(kMinimalYaml, "b.yaml",
                                             {"train.lr_init=3e-4", "data.train=[shard, more]",
                                              "data.train_weights=[2, 1]", "train.steps=", "train.tokens=1e6"});
  EXPECT_EQ(config_differences(before, after),
            (std::vector<std::string>{"data.train: [\"shard\"] -> [\"shard\", \"more\"]",
                                      "data.train_weights: [] -> [2.0, 1.0]", "train.steps: 10 -> unset",
                                      "train.tokens: unset -> 1000000", "train.lr_init: 6.0e-04 -> 3.0e-04"}));
}

TEST(ConfigLoad, KeysAreUniqueAndQualified) {
  const std::vector<std::string> keys = config_keys();
  const std::set<std::string> unique(keys.begin(), keys.end());
  EXPECT_EQ(unique.size(), keys.size());
  for (const char* key : {"model.n_layer", "model.n_embd", "model.vocab_size", "model.ctx_len", "model.dim_ffn",
                          "data.train", "data.valid", "data.tokenizer", "data.sampler", "data.magic_prime",
                          "train.micro_batch", "train.grad_accum", "train.steps", "train.tokens", "train.lr_init",
                          "train.lr_final", "train.warmup_steps", "train.lr_schedule", "train.beta1", "train.beta2",
                          "train.adam_eps", "train.weight_decay", "train.grad_clip", "train.seed",
                          "train.eval_interval", "train.threads", "parallel.dp", "parallel.tp", "parallel.pp",
                          "parallel.schedule", "parallel.zero", "parallel.vocab_pad_multiple", "checkpoint.dir",
                          "checkpoint.interval", "checkpoint.keep_last", "checkpoint.keep_every", "checkpoint.async",
                          "checkpoint.resume", "controller.enabled", "controller.address", "controller.token_file",
                          "device"}) {
    EXPECT_EQ(unique.count(key), 1u) << key;
  }
}

TEST(ConfigLoad, EnumNames) {
  EXPECT_STREQ(to_string(LrDecay::Cosine), "cosine");
  EXPECT_STREQ(to_string(LrDecay::Exponential), "exponential");
  EXPECT_STREQ(to_string(LrDecay::Linear), "linear");
  EXPECT_STREQ(to_string(LrDecay::Constant), "constant");
  EXPECT_STREQ(to_string(SamplerKind::MagicPrime), "magic_prime");
  EXPECT_STREQ(to_string(PipelineSchedule::OneFOneB), "1f1b");
  EXPECT_STREQ(to_string(DeviceKind::Cuda), "cuda");
}

}  // namespace
}  // namespace rwkv::trainer
