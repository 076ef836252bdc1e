// The windows each training step reads, as the config asks for them:
// data.train as one stream (its entries back to back) in RWKV-LM's
// magic-prime order or in order, or, with data.train_weights, each entry a
// dataset of its own in a weighted mixture (data/blended_sampler.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/blended_sampler.h"
#include "data/sampler.h"
#include "data/token_dataset.h"
#include "trainer/config.h"

namespace rwkv::trainer {

// The binidx prefixes the config entries (paths, prepare outputs, globs) name,
// in order; throws naming `key` for an entry that matches no shard.
std::vector<std::string> shard_prefixes(const std::vector<std::string>& specs, const char* key);

// A held-out set: one data.valid entry (its shards back to back). Each entry
// is evaluated on its own, so that a second entry is not crowded out by the
// first's windows, and reported under its name.
struct ValidationSet {
  std::string name;  // the entry's last path component, or the whole entry where two share one
  std::unique_ptr<data::TokenDataset> data;
};
std::vector<ValidationSet> open_validation_sets(const TrainConfig& config);

class TrainingData {
 public:
  // layout: the run's batch geometry. config_path names the file in errors.
  TrainingData(const TrainConfig& config, const data::BatchLayout& layout, const std::string& config_path);

  // tokens: [micro_batch, ctx_len + 1] for data-parallel rank dp_rank.
  void fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const;

  // For the log: one line per dataset (tokens, shards, order, windows an
  // epoch, share, and the epochs the first num_samples samples make).
  std::vector<std::string> describe(uint64_t num_samples) const;

 private:
  data::BatchLayout layout_;
  std::vector<std::string> names_;                            // one per dataset
  std::vector<std::unique_ptr<data::TokenDataset>> datasets_;  // one stream, or one per mixture entry
  std::unique_ptr<data::MagicPrimeSampler> magic_;
  std::unique_ptr<data::SequentialSampler> sequential_;
  std::unique_ptr<data::BlendedSampler> blended_;
};

}  // namespace rwkv::trainer
