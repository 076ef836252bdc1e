// Every class of config error ends as one rwkv::Error that names the file (and
// line), the key, what was expected, what was found, and a hint.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config_test_util.h"

namespace rwkv::trainer {
namespace {

using test::config_error;
using test::kMinimalYaml;
using test::minimal_with;

struct Case {
  std::string yaml;
  std::vector<std::string> overrides;
  std::vector<std::string> fragments;
};

// Every message names the origin and carries a hint.
void expect_errors(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    std::vector<std::string> fragments = c.fragments;
    fragments.push_back("test.yaml");
    fragments.push_back("---> HINT: ");
    config_error(c.yaml, c.overrides, fragments);
  }
}

std::string replaced(const std::string& from, const std::string& to) {
  std::string yaml = kMinimalYaml;
  yaml.replace(yaml.find(from), from.size(), to);
  return yaml;
}

TEST(ConfigErrors, UnknownKeysSuggestTheClosestKnownOne) {
  expect_errors({
      {minimal_with("train", "micro_bach: 4"), {},
       {"test.yaml:9:3: train.micro_bach", "unknown key 'micro_bach' in section 'train'", "did you mean 'micro_batch'?"}},
      {minimal_with("train", "lr_int: 1e-3"), {}, {"did you mean 'lr_init'?"}},
      // RWKV-LM's own names point at ours.
      {minimal_with("train", "micro_bsz: 4"), {},
       {"unknown key 'micro_bsz'", "did you mean 'train.micro_batch'? (RWKV-LM's --micro_bsz)"}},
      {minimal_with("train", "grad_cp: 1"), {}, {"train.recompute"}},
      {minimal_with("model", "head_qk: 0"), {}, {"head_qk", "not implemented"}},
      // A real key in the wrong section.
      {minimal_with("train", "n_layer: 4"), {}, {"train.n_layer", "'n_layer' belongs in section 'model'"}},
      {minimal_with("model", "device: cpu"), {}, {"'device' is a top-level key"}},
      {std::string(kMinimalYaml) + "modle:\n  n_layer: 2\n", {},
       {"test.yaml:10:1: modle", "unknown key 'modle' at the top level", "did you mean 'model'?"}},
      {std::string(kMinimalYaml) + "steps: 10\n", {}, {"'steps' belongs in section 'train'"}},
      {std::string(kMinimalYaml) + "zzz: 1\n", {}, {"the top level holds the sections model, data, train"}},
      {minimal_with("checkpoint", "qqqqqqqq: 1"), {}, {"the keys of 'checkpoint' are dir, interval"}},
      // A missing ':' on a section's last line reads as one long key.
      {std::string(kMinimalYaml) + "checkpoint:\n  dir: x\n  keep_last 4\n", {},
       {"unknown key 'keep_last 4'", "a ':' is missing: write 'keep_last: 4'"}},
      {std::string(kMinimalYaml) + "checkpoint:\n  keep_last 4\n", {},
       {"checkpoint: expected a section of keys, got 'keep_last 4'", "a ':' is missing: write 'keep_last: 4'"}},
  });
}

TEST(ConfigErrors, WrongTypesNameTheExpectation) {
  expect_errors({
      {minimal_with("train", "micro_batch: four"), {},
       {"test.yaml:9:3: train.micro_batch: expected a positive integer, got 'four'", "whole number"}},
      {minimal_with("train", "micro_batch: 1.5"), {}, {"expected a positive integer, got '1.5'"}},
      {minimal_with("train", "micro_batch: 0"), {}, {"expected a positive integer, got '0'"}},
      {minimal_with("train", "micro_batch: [1, 2]"), {}, {"expected a positive integer, got a list"}},
      {minimal_with("train", "micro_batch: {a: 1}"), {}, {"got a mapping"}},
      {minimal_with("train", "micro_batch:"), {}, {"got an empty value"}},
      {minimal_with("train", "micro_batch: 0x10"), {}, {"got '0x10'"}},
      {minimal_with("train", "seed: -1"), {}, {"train.seed: expected a non-negative integer, got '-1'"}},
      {minimal_with("train", "lr_init: fast"), {},
       {"train.lr_init: expected a number > 0, got 'fast'", "decimal number"}},
      {minimal_with("train", "lr_init: 0"), {},
       {"expected a number > 0, got '0'", "configs/README.md describes `train.lr_init`"}},
      {minimal_with("train", "lr_init: .inf"), {}, {"expected a number > 0, got '.inf'"}},
      {minimal_with("train", "lr_init: nan"), {}, {"got 'nan'"}},
      {minimal_with("train", "beta2: 1.0"), {}, {"train.beta2: expected a number in [0, 1), got '1.0'"}},
      {minimal_with("train", "weight_decay: -0.1"), {}, {"expected a number >= 0"}},
      {minimal_with("train", "l2wrap: yes"), {},
       {"train.l2wrap: expected true or false, got 'yes'", "write true or false"}},
      {minimal_with("train", "l2wrap: 1"), {}, {"expected true or false, got '1'"}},
      {minimal_with("train", "lr_schedule: cosin"), {},
       {"expected one of exponential, cosine, linear, constant, wsd, got 'cosin'", "did you mean 'cosine'?"}},
      {minimal_with("train", "lr_schedule: exp"), {}, {"did you mean 'exponential'?"}},
      {std::string(kMinimalYaml) + "device: gpu\n", {},
       {"device: expected one of cpu, cuda, got 'gpu'", "did you mean 'cuda'?"}},
      {minimal_with("parallel", "schedule: 1F1B"), {}, {"one of gpipe, 1f1b", "did you mean '1f1b'?"}},
      {minimal_with("data", "sampler: random"), {}, {"data.sampler: expected one of magic_prime, sequential"}},
      {minimal_with("checkpoint", "dir: [a, b]"), {}, {"checkpoint.dir: expected a non-empty string, got a list"}},
      {minimal_with("checkpoint", "dir: \"\""), {}, {"checkpoint.dir: expected a non-empty string, got ''"}},
      {replaced("[shard]", "[]"), {}, {"data.train: the list is empty"}},
      {replaced("[shard]", "[a, [b]]"), {}, {"data.train: expected a list of paths", "got a list"}},
      {replaced("[shard]", "[a, \"\"]"), {}, {"data.train: an entry is an empty string"}},
      {replaced("[shard]", "{a: 1}"), {}, {"data.train: expected a list of paths", "got a mapping"}},
      {minimal_with("data", "train_weights: 1"), {},
       {"data.train_weights: expected a list of numbers > 0, one per data.train entry", "got '1'", "e.g. [0.7, 0.3]"}},
      {minimal_with("data", "train_weights: [0]"), {}, {"data.train_weights: expected a list of numbers > 0", "got '0'"}},
      {minimal_with("train", "freeze: {emb: 1}"), {},
       {"train.freeze: expected a list of parameter names or globs, e.g. [emb.weight, \"blocks.0.*\"]", "got a mapping"}},
      {minimal_with("train", "freeze: [emb.weight, [a]]"), {}, {"each entry is one reference name or glob"}},
      {minimal_with("train", "dropout: 1"), {}, {"train.dropout: expected a number in [0, 1), got '1'"}},
      {minimal_with("data", "train_weights: [-1]"), {}, {"got '-1'"}},
      {minimal_with("data", "train_weights: [.inf]"), {}, {"got '.inf'"}},
      {minimal_with("data", "train_weights: [a]"), {}, {"got 'a'"}},
      {replaced("n_embd: 32", "n_embd: 2000000"), {},
       {"model.n_embd: expected a positive integer up to 1048576, got '2000000'"}},
      {replaced("ctx_len: 16", "ctx_len: 0"), {},
       {"model.ctx_len: expected a positive integer up to 2147483646, got '0'"}},
      {std::string(kMinimalYaml) + "checkpoint: 5\n", {},
       {"test.yaml:10:1: checkpoint: expected a section of keys, got '5'"}},
  });
}

TEST(ConfigErrors, MissingKeys) {
  expect_errors({
      {replaced("  n_embd: 32\n", ""), {},
       {"model.n_embd: missing; expected a positive integer", "add 'n_embd: ...' under 'model:'"}},
      {replaced("data:\n  train: [shard]\n", ""), {}, {"data.train: missing"}},
      {replaced("  steps: 10\n", ""), {},
       {"train.steps: missing; expected exactly one of train.steps and train.tokens"}},
      {replaced("train:\n  steps: 10\n", ""), {}, {"exactly one of train.steps and train.tokens"}},
  });
}

TEST(ConfigErrors, ImpossibleCombinations) {
  expect_errors({
      {minimal_with("train", "tokens: 1000"), {},
       {"train.tokens", "both set; expected exactly one", "--set train.steps="}},
      {minimal_with("train", "warmup_steps: 11"), {},
       {"train.warmup_steps: expected at most the run's 10 steps, got 11"}},
      {replaced("steps: 10", "tokens: 160\n  warmup_steps: 20"), {},
       {"at most the run's 10 steps (from train.tokens), got 20"}},
      {minimal_with("train", "eval_interval: 100"), {}, {"train.eval_interval: is 100 but data.valid names no shards"}},
      {minimal_with("train", "cooldown_fraction: 0.1"), {},
       {"train.cooldown_fraction: is 0.1 but train.lr_schedule exponential has no cooldown", "lr_schedule: wsd"}},
      {minimal_with("train", "lr_schedule: wsd\n  cooldown_fraction: 0"), {},
       {"train.cooldown_fraction: expected a number in (0, 1], got '0'"}},
      {replaced("vocab_size: 257", "vocab_size: 256"), {},
       {"model.vocab_size: expected at least 257 for the bytes tokenizer", "got 256"}},
      {minimal_with("data", "tokenizer: gpt2"), {},
       {"data.tokenizer: expected bytes, hf:PATH, world:PATH", "got 'gpt2'"}},
      {minimal_with("data", "magic_prime: 7"), {},
       {"data.magic_prime: expected a prime p with p mod 3 = 2", "got 7 (a prime, but p mod 3 = 1)", "rwkv-data magic-prime"}},
      {minimal_with("data", "magic_prime: 35"), {}, {"got 35 (not a prime)"}},
      {minimal_with("data", "train_weights: [0.7, 0.3]"), {},
       {"data.train_weights: has 2 weight(s) but data.train has 1 entry; expected one weight per entry",
        "in the same order"}},
      {replaced("[shard]", "[a, b]\n  train_weights: [1, 2]\n  magic_prime: 11"), {},
       {"data.magic_prime: is 11 but with data.train_weights each dataset", "remove magic_prime"}},
      {minimal_with("data", "magic_prime: 11\n  sampler: sequential"), {},
       {"data.magic_prime: is 11 but data.sampler sequential does not use it"}},
      {minimal_with("parallel", "tp: 3"), {},
       {"parallel.tp: model.n_embd (32) is not divisible by parallel.tp (3)", "e.g. tp: 2"}},
      {minimal_with("model", "dim_ffn: 100") + "parallel:\n  tp: 8\n", {},
       {"model.dim_ffn (100) is not divisible by parallel.tp (8)", "e.g. tp: 5"}},
      {minimal_with("parallel", "pp: 2\n  stage_layers: [1, 2]"), {},
       {"parallel.stage_layers: expected pp (2) block counts summing to model.n_layer (2), got 2 counts summing to 3"}},
      {minimal_with("parallel", "pp: 3"), {},
       {"parallel.pp: expected at most model.n_layer (2) pipeline stages, got 3"}},
      {minimal_with("parallel", "dp: 0"), {}, {"parallel.dp: expected a positive integer up to 1048576, got '0'"}},
      {minimal_with("checkpoint", "interval: 300\n  keep_every: 1000"), {},
       {"checkpoint.keep_every: expected a multiple of checkpoint.interval (300), got 1000", "keep_every: 1200"}},
      {minimal_with("checkpoint", "interval: 0\n  keep_every: 1000"), {}, {"checkpoint.interval is 0"}},
      {minimal_with("controller", "enabled: true"), {}, {"controller.address: missing; expected host:port"}},
      {minimal_with("controller", "address: localhost"), {},
       {"controller.address: expected host:port with a port in 1-65535, got 'localhost'"}},
      {minimal_with("controller", "address: host:99999"), {}, {"got 'host:99999'"}},
      {minimal_with("controller", "heartbeat_s: 10\n  heartbeat_timeout_s: 10"), {},
       {"controller.heartbeat_timeout_s: expected more than controller.heartbeat_s (10), got 10"}},
  });
  // The same combinations are fine once consistent.
  EXPECT_NO_THROW(load_config_text(minimal_with("train", "lr_final: 0"), "test.yaml"));  // decays linearly
  EXPECT_NO_THROW(load_config_text(minimal_with("train", "lr_schedule: wsd\n  cooldown_fraction: 0.1"), "test.yaml"));
  EXPECT_NO_THROW(load_config_text(minimal_with("parallel", "tp: 2\n  vocab_pad_multiple: 64"), "test.yaml"));
  EXPECT_NO_THROW(load_config_text(minimal_with("data", "magic_prime: 11"), "test.yaml"));
  {
    const TrainConfig c = load_config_text(replaced("[shard]", "[a, \"b/*\"]\n  train_weights: [0.7, 3e-1]"), "test.yaml");
    EXPECT_EQ(c.data.train_weights, (std::vector<double>{0.7, 0.3}));
    EXPECT_TRUE(load_config_text(config_to_yaml(c), "dump.yaml") == c) << config_to_yaml(c);  // reads back the same
    EXPECT_NE(config_digest(c), config_digest(load_config_text(replaced("[shard]", "[a, \"b/*\"]"), "test.yaml")));
  }
  EXPECT_NO_THROW(load_config_text(minimal_with("train", "warmup_steps: 10"), "test.yaml"));
  EXPECT_NO_THROW(load_config_text(minimal_with("checkpoint", "interval: 250\n  keep_every: 1000"), "test.yaml"));
}

TEST(ConfigErrors, YamlStructure) {
  expect_errors({
      {"model:\n  n_layer: [1, 2\n  n_embd: 3\n", {}, {"test.yaml:3:", "YAML syntax error", "never tabs"}},
      {"model:\n\tn_layer: 2\n", {}, {"test.yaml:2:", "YAML syntax error"}},
      // Elsewhere it is a syntax error on the next line; the hint says to look above.
      {minimal_with("train", "micro_batch 4"), {}, {"test.yaml:10:", "YAML syntax error", "the line above"}},
      {"", {}, {"the config is empty", "configs/tiny.yaml"}},
      {"# only a comment\n", {}, {"the config is empty"}},
      {"- a\n- b\n", {}, {"expected a mapping of sections at the top level, got a list"}},
      {"just text\n", {}, {"got 'just text'"}},
      {std::string(kMinimalYaml) + "---\nmodel: {}\n", {}, {"holds 2 YAML documents"}},
      {std::string(kMinimalYaml) + "  steps: 20\n", {},
       {"test.yaml:10:3: train.steps: written twice (first at test.yaml:9:3)"}},
      {std::string(kMinimalYaml) + "model:\n  n_layer: 2\n", {}, {"model: written twice"}},
  });
}

TEST(ConfigErrors, BadOverridesNameTheOverride) {
  expect_errors({
      {kMinimalYaml, {"train.micro_batch"}, {"test.yaml (--set train.micro_batch): expected section.key=value"}},
      {kMinimalYaml, {"train.a.b=1"}, {"'train.a.b' is not a key"}},
      {kMinimalYaml, {".steps=1"}, {"'.steps' is not a key"}},
      {kMinimalYaml, {"train.steps=[1, 2"}, {"(--set train.steps=[1, 2): the value is not valid YAML"}},
      {kMinimalYaml, {"train=5"}, {"'train' is a section, not a key", "--set train.micro_batch=..."}},
      {kMinimalYaml, {"train.lr_int=1e-3"},
       {"test.yaml (--set train.lr_int=1e-3): train.lr_int: unknown key 'lr_int'", "did you mean 'lr_init'?"}},
      {kMinimalYaml, {"trian.steps=1"}, {"unknown key 'trian' at the top level", "did you mean 'train'?"}},
      {kMinimalYaml, {"train.micro_batch=four"},
       {"test.yaml (--set train.micro_batch=four): train.micro_batch: expected a positive integer, got 'four'"}},
      {kMinimalYaml, {"train.tokens=100"},
       {"(--set train.tokens=100): train.tokens: train.steps and train.tokens are both set"}},
      {std::string(kMinimalYaml) + "checkpoint: 5\n", {"checkpoint.dir=x"},
       {"'checkpoint' in the file is '5', not a section of keys"}},
  });
}

TEST(ConfigErrors, FilesThatCannotBeRead) {
  try {
    load_config("/nonexistent/dir/run.yaml");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("/nonexistent/dir/run.yaml: cannot open the config file (No such file or directory)"),
              std::string::npos) << message;
    EXPECT_NE(message.find("HINT"), std::string::npos) << message;
  }
  try {
    load_config(test::source_dir() + "/configs");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  // Errors in a real file carry its path and line.
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "rwkv_config_error_test.yaml";
  std::ofstream(path) << minimal_with("train", "micro_batch: four");
  try {
    load_config(path.string());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ":9:3: train.micro_batch"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace rwkv::trainer
