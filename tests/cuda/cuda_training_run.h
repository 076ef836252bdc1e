// rwkv-train's loop on a tiny model for the CUDA tests that train end to end
// (bf16 step, checkpoints, host synchronisations): one corpus, one config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "data/binidx_writer.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"

namespace rwkv::test {

// A 20000-token corpus with a learnable pattern over 60 byte ids, written as
// binidx at <dir>/train; returns the prefix.
inline std::string write_pattern_corpus(const std::filesystem::path& dir) {
  const std::string prefix = (dir / "train").string();
  data::BinIdxWriter writer(prefix, data::TokenDType::U16);
  std::vector<int32_t> doc;
  for (int i = 0; i < 20000; ++i) doc.push_back(1 + (i * 7 + (i / 13) * 3) % 60);
  writer.add_document(doc);
  writer.commit();
  return prefix;
}

// The run: L2 C64 over bytes, 4 x 32 tokens x 2 micro-batches a step, lr 1e-3.
struct TinyRun {
  std::string device = "cuda";     // cpu | cuda
  std::string precision = "fp32";  // fp32 | bf16
  int64_t steps = 4;
  int64_t log_interval = 100;
  std::string checkpoint_dir;
  std::string resume = "never";    // never | auto | a checkpoint directory
  int64_t checkpoint_interval = 2; // 0: only at the end
};

inline std::string tiny_run_yaml(const std::string& corpus_prefix, const TinyRun& run) {
  std::ostringstream yaml;
  yaml << "device: " << run.device << "\n"
       << "model: {n_layer: 2, n_embd: 64, vocab_size: 257, ctx_len: 32}\n"
       << "data: {train: [" << corpus_prefix << "], tokenizer: bytes}\n"
       << "train: {micro_batch: 4, grad_accum: 2, steps: " << run.steps << ", lr_init: 1e-3, lr_final: 1e-3, "
       << "log_interval: " << run.log_interval << ", peak_gflops: 1, threads: 1, precision: " << run.precision << "}\n"
       << "checkpoint: {dir: " << run.checkpoint_dir << ", resume: " << run.resume
       << ", interval: " << run.checkpoint_interval << ", keep_last: 0}\n";
  return yaml.str();
}

inline trainer::TrainSummary run_tiny_training(const std::string& corpus_prefix, const TinyRun& run,
                                               const trainer::TrainOptions& options = {}) {
  return trainer::run_training(trainer::load_config_text(tiny_run_yaml(corpus_prefix, run), "test"), options);
}

}  // namespace rwkv::test
