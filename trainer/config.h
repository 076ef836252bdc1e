// The training configuration: one YAML file (see configs/README.md for every
// key) plus `--set section.key=value` overrides, checked as a whole before a
// single tensor is allocated. Anything a user can get wrong here ends as one
// rwkv::Error naming the file, the key, what was expected and a hint.
//
// The structs are plain data with defaults from the RWKV-LM reference recipe
// (RWKV-v4neo/train.py: Adam betas (0.9, 0.99), eps 1e-8, grad clip 1.0,
// lr 6e-4 -> 1e-5 exponential decay, no weight decay); a loaded config has
// every derived default filled in (dim_ffn), so two configs compare equal
// exactly when they train the same way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/lr_schedule.h"  // LrDecay: the schedule's own enum, so config and schedule cannot drift
#include "trainer/precision.h"    // Precision: the model's own enum, likewise

namespace rwkv::trainer {

enum class SamplerKind { MagicPrime, Sequential };
enum class PipelineSchedule { GPipe, OneFOneB };
enum class DeviceKind { Cpu, Cuda };

struct ModelConfig {
  int64_t n_layer = 0;     // required
  int64_t n_embd = 0;      // required
  int64_t vocab_size = 0;  // required
  int64_t ctx_len = 0;     // required: tokens per sample (the model sees ctx_len + 1 per row)
  int64_t dim_ffn = 0;     // channel-mix hidden size; 0 in the file means 4 * n_embd
  bool operator==(const ModelConfig&) const = default;
};

struct DataConfig {
  std::vector<std::string> train;  // required: binidx prefixes (path without .bin/.idx) or globs
  // Optional mixture weights, one per data.train entry: each entry is then a
  // dataset of its own, sampled in proportion (data/blended_sampler.h).
  // Empty: the entries are one stream, back to back.
  std::vector<double> train_weights;
  std::vector<std::string> valid;  // optional held-out shards for evaluation
  std::string tokenizer = "bytes"; // "bytes", "hf:PATH", "world:PATH", PATH.json or PATH.txt
  SamplerKind sampler = SamplerKind::MagicPrime;
  int64_t magic_prime = 0;         // 0: computed from the data; else a prime p = 2 (mod 3)
  bool operator==(const DataConfig&) const = default;
};

struct TrainSection {
  int64_t micro_batch = 1;   // sequences per rank per forward/backward
  int64_t grad_accum = 1;    // micro-batches per optimizer step (the pipeline's micro-batches)
  int64_t steps = 0;         // exactly one of steps and tokens is > 0
  int64_t tokens = 0;
  double lr_init = 6e-4;
  double lr_final = 1e-5;
  int64_t warmup_steps = 0;
  LrDecay lr_schedule = LrDecay::Exponential;  // with lr_final (or lr_init) 0, decays linearly
  double cooldown_fraction = 0.2;  // lr_schedule wsd: share of the post-warmup steps that decay
  double beta1 = 0.9;
  double beta2 = 0.99;
  double adam_eps = 1e-8;
  double weight_decay = 0.0;  // applied to 2-D weights only
  double grad_clip = 1.0;     // global L2 norm; 0 = off
  int64_t seed = 0;
  int64_t eval_interval = 0;  // steps between evaluations; 0 = never
  int64_t eval_batches = 8;
  int64_t log_interval = 1;
  bool l2wrap = true;
  bool layerwise_lr = true;   // time_decay x2, time_first x3 learning rates
  bool recompute = false;     // activation checkpointing per block
  double dropout = 0.0;       // the reference's --dropout: p for the embedding and each block's residual sums
  std::vector<std::string> freeze;  // parameters (names or globs) that keep their values (trainer/frozen_parameters.h)
  Precision precision = Precision::FP32;  // bf16: mixed precision on CUDA (trainer/precision_plan.h)
  int64_t threads = 0;        // CPU threads per rank; 0 = cores on the node / ranks on the node
  double peak_gflops = 0.0;   // the machine's matmul peak for MFU; 0 = measure the GEMM peak at start
  bool operator==(const TrainSection&) const = default;
};

struct ParallelConfig {
  int64_t dp = 1;
  int64_t tp = 1;
  int64_t pp = 1;
  PipelineSchedule schedule = PipelineSchedule::OneFOneB;
  bool zero = false;               // ZeRO-1: optimizer state sharded over dp
  bool overlap_grad_reduce = true; // dp (plain or ZeRO-1): reduce gradient buckets during the last backward
  double bucket_mib = 25.0;        // dp gradient bucket (all-reduce, ZeRO-1 chunks), MiB of f32 gradient
  // The dtype dp gradient buckets travel in: fp32, or bf16 (rounded, half
  // the bytes, as DeepSpeed's bf16 runs; parallel/bucketed_reduction.h).
  Precision grad_reduce_dtype = Precision::FP32;
  int64_t bucket_bytes() const { return std::max<int64_t>(1, static_cast<int64_t>(bucket_mib * 1048576.0)); }
  int64_t vocab_pad_multiple = 1;  // pad the vocabulary to a multiple of this (1 = no padding)
  std::vector<int64_t> stage_layers;  // blocks per pipeline stage; empty = even split
  bool operator==(const ParallelConfig&) const = default;
};

struct CheckpointConfig {
  std::string dir = "checkpoints";
  int64_t interval = 1000;  // steps between checkpoints; 0 = only at the end
  double interval_minutes = 0;  // also when this many minutes passed since the last one; 0 = off
  int64_t keep_last = 3;    // committed checkpoints kept; 0 = keep all
  int64_t keep_every = 0;   // also keep every checkpoint whose step is a multiple; 0 = none
  bool async = false;       // write in the background while training goes on
  std::string resume = "auto";  // "auto", "never", or a checkpoint directory
  bool operator==(const CheckpointConfig&) const = default;
};

struct ControllerConfig {
  bool enabled = false;
  std::string address;     // host:port of the controller; required when enabled
  std::string token_file;  // file holding the shared secret; "" = none
  double heartbeat_s = 5.0;
  double heartbeat_timeout_s = 60.0;
  bool operator==(const ControllerConfig&) const = default;
};

struct TrainConfig {
  ModelConfig model;
  DataConfig data;
  TrainSection train;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  ControllerConfig controller;
  DeviceKind device = DeviceKind::Cpu;
  bool operator==(const TrainConfig&) const = default;
};

// Reads the YAML file at `path`, applies `overrides` ("section.key=value",
// the value read as YAML: 3e-4, true, [a, b]; an empty value or ~ removes the
// key so its default applies), then checks every key, type and value.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same for YAML text; `origin` names it in error messages.
TrainConfig load_config_text(const std::string& yaml, const std::string& origin,
                             const std::vector<std::string>& overrides = {});

// The canonical YAML form: every key in a fixed order, defaults filled in,
// numbers in shortest round-trip form. load_config_text(config_to_yaml(c)) == c.
std::string config_to_yaml(const TrainConfig& config);
// XXH3-64 of config_to_yaml: equal configs have equal digests on every machine.
uint64_t config_digest(const TrainConfig& config);
std::string config_digest_hex(const TrainConfig& config);  // 16 lowercase hex digits
// The keys whose canonical values differ, in canonical order, each as
// "section.key: before -> after" ("unset" for a key one of them leaves out).
std::vector<std::string> config_differences(const TrainConfig& before, const TrainConfig& after);

// Every key the parser knows, "section.key" (or "key" at the top level), in
// canonical order. configs/README.md documents each of them.
std::vector<std::string> config_keys();

// Names of the enum values as they appear in YAML.
const char* to_string(LrDecay value);
const char* to_string(SamplerKind value);
const char* to_string(PipelineSchedule value);
const char* to_string(DeviceKind value);
const char* to_string(Precision value);

// Trainable parameters of an RWKV-4 model (no padding):
//   emb + head                 2 V C
//   per block  att K,V,R,O     4 C^2
//              att vectors     5 C   (time_decay, time_first, time_mix_k/v/r)
//              ffn K, V        2 C F
//              ffn R           C^2
//              ffn vectors     2 C   (time_mix_k/r)
//              ln1, ln2        4 C
//   ln0 (block 0) + ln_out     4 C
// With F = 4C: 2VC + L(13C^2 + 11C) + 4C, as in DESIGN.md.
int64_t parameter_count(const ModelConfig& model);
// Sequences per optimizer step over all data-parallel ranks.
int64_t global_batch(const TrainConfig& config);
// Tokens consumed per optimizer step (global_batch * ctx_len).
int64_t tokens_per_step(const TrainConfig& config);
// train.steps, or train.tokens rounded up to whole steps.
int64_t total_steps(const TrainConfig& config);

}  // namespace rwkv::trainer
