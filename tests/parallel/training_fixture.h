// What the multi-rank training tests share: a small dataset every layout
// trains on, and the config of a small model for a given layout.
#pragma once

#include <mpi.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "data/binidx_writer.h"
#include "trainer/config.h"

namespace rwkv::parallel::test {

// A synthetic token stream with structure to learn (each token predicts the
// next), written by world rank 0; returns the binidx prefix. Beside it,
// mixture_dataset(prefix) holds a smaller stream of another pattern (other
// tokens), the second dataset of SmallRun::blend.
inline std::string mixture_dataset(const std::string& prefix) { return prefix + "_b"; }

inline std::string write_training_dataset(const std::filesystem::path& dir) {
  const std::string prefix = (dir / "train").string();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    std::filesystem::create_directories(dir);
    auto write = [](const std::string& to, int tokens, auto token_at) {
      data::BinIdxWriter writer(to, data::TokenDType::U16);
      std::vector<int32_t> doc;
      for (int i = 0; i < tokens; ++i) doc.push_back(token_at(i));
      writer.add_document(doc);
      writer.finish();
      writer.commit();
    };
    write(prefix, 20000, [](int i) { return 1 + (i * 7 + (i / 13) * 3) % 60; });
    write(mixture_dataset(prefix), 3000, [](int i) { return 100 + (i * 5) % 40; });
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return prefix;
}

struct SmallRun {
  int dp = 1, tp = 1, pp = 1;
  std::string schedule = "1f1b";
  bool zero = false;
  std::string stage_layers;  // e.g. "[1, 3]"; "" = even
  bool blend = false;        // train on a 0.7 : 0.3 mixture of the dataset and mixture_dataset(prefix)
};

// 4 blocks, width 32 (divisible by tp 1, 2, 4), the byte vocabulary 257 (odd:
// padded for tp); the global batch is 4 sequences of 16 tokens (micro_batch
// 4/dp x grad_accum 2), 4 steps, a checkpoint every 2 into ckpt_dir.
inline trainer::TrainConfig small_run_config(const std::string& data_prefix, const SmallRun& run,
                                             const std::string& ckpt_dir) {
  std::ostringstream yaml;
  yaml << "model: {n_layer: 4, n_embd: 32, vocab_size: 257, ctx_len: 16}\n"
       << "data: {train: [" << data_prefix
       << (run.blend ? ", " + mixture_dataset(data_prefix) + "], train_weights: [0.7, 0.3]" : std::string("]"))
       << ", tokenizer: bytes}\n"
       << "train: {micro_batch: " << 4 / run.dp << ", grad_accum: 2, steps: 4, lr_init: 3e-3, lr_final: 1e-3, "
       << "warmup_steps: 1, log_interval: 100, peak_gflops: 1, weight_decay: 0.1, threads: 1}\n"
       << "parallel: {dp: " << run.dp << ", tp: " << run.tp << ", pp: " << run.pp << ", schedule: " << run.schedule
       << ", zero: " << (run.zero ? "true" : "false")
       << (run.stage_layers.empty() ? std::string() : ", stage_layers: " + run.stage_layers) << "}\n"
       << "checkpoint: {dir: " << ckpt_dir << ", resume: never, interval: 2, keep_last: 0}\n";
  return trainer::load_config_text(yaml.str(), "test");
}

}  // namespace rwkv::parallel::test
