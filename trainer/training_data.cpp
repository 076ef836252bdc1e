#include "trainer/training_data.h"

#include <algorithm>

#include "core/error.h"
#include "data/prepare.h"

namespace rwkv::trainer {

std::vector<std::string> shard_prefixes(const std::vector<std::string>& specs, const char* key) {
  std::vector<std::string> prefixes;
  for (const std::string& spec : specs) {
    std::vector<std::string> found = data::find_shards(spec);
    RWKV_CHECK(!found.empty(), "config ", key, ": no binidx shards match '", spec,
               "'\n  ---> HINT: run `rwkv-data prepare` first, or give the path without .bin/.idx");
    prefixes.insert(prefixes.end(), found.begin(), found.end());
  }
  return prefixes;
}

std::vector<ValidationSet> open_validation_sets(const TrainConfig& config) {
  const std::vector<std::string>& entries = config.data.valid;
  auto last_component = [](const std::string& entry) {
    std::string trimmed = entry;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    const size_t slash = trimmed.rfind('/');
    return slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
  };
  std::vector<ValidationSet> sets;
  for (const std::string& entry : entries) {
    const std::string name = last_component(entry);
    const bool shared = std::count_if(entries.begin(), entries.end(),
                                      [&](const std::string& e) { return last_component(e) == name; }) > 1;
    sets.push_back({shared ? entry : name, std::make_unique<data::TokenDataset>(shard_prefixes({entry}, "data.valid"),
                                                                                config.model.vocab_size)});
  }
  return sets;
}

TrainingData::TrainingData(const TrainConfig& config, const data::BatchLayout& layout, const std::string& config_path)
    : layout_(layout) {
  const DataConfig& d = config.data;
  const int64_t vocab = config.model.vocab_size;
  if (!d.train_weights.empty()) {
    // A mixture: every entry is a dataset of its own, in its own window order.
    std::vector<data::MixtureComponent> components;
    for (size_t k = 0; k < d.train.size(); ++k) {
      datasets_.push_back(std::make_unique<data::TokenDataset>(shard_prefixes({d.train[k]}, "data.train"), vocab));
      names_.push_back(d.train[k]);
      components.push_back({d.train[k], datasets_.back().get(), d.train_weights.at(k)});
    }
    const data::WindowOrder order =
        d.sampler == SamplerKind::Sequential ? data::WindowOrder::Sequential : data::WindowOrder::MagicPrime;
    try {
      blended_ = std::make_unique<data::BlendedSampler>(std::move(components), layout_, order);
    } catch (const Error& e) {
      throw Error(str_cat(config_path, ": data.train_weights: ", e.what()));
    }
    return;
  }
  datasets_.push_back(std::make_unique<data::TokenDataset>(shard_prefixes(d.train, "data.train"), vocab));
  names_.push_back(d.train.size() == 1 ? d.train[0] : str_cat(d.train.size(), " entries of data.train"));
  const data::TokenDataset& stream = *datasets_.back();
  if (d.sampler == SamplerKind::MagicPrime) {
    magic_ = std::make_unique<data::MagicPrimeSampler>(stream, layout_, static_cast<uint64_t>(d.magic_prime));
  } else {
    sequential_ = std::make_unique<data::SequentialSampler>(stream, layout_);
    RWKV_CHECK(sequential_->num_steps() > 0 && sequential_->num_windows() >= layout_.global_batch, config_path,
               ": data.train holds ", sequential_->num_windows(), " windows of ", layout_.ctx_len + 1,
               " tokens, fewer than one step's ", layout_.global_batch, "\n  ---> HINT: add data or shrink the batch");
  }
}

void TrainingData::fill(int64_t step, int64_t micro_step, int64_t dp_rank, int32_t* tokens) const {
  if (blended_) {
    blended_->fill(step, micro_step, dp_rank, tokens);
  } else if (magic_) {
    magic_->fill(step, micro_step, dp_rank, tokens);
  } else {
    // Whole batches only, wrapping around: the run's steps cycle through the data in order.
    const int64_t full_steps = sequential_->num_windows() / layout_.global_batch;
    sequential_->fill(step % full_steps, micro_step, dp_rank, tokens);
  }
}

std::vector<std::string> TrainingData::describe(uint64_t num_samples) const {
  std::vector<std::string> lines;
  for (size_t k = 0; k < datasets_.size(); ++k) {
    const data::TokenDataset& set = *datasets_[k];
    uint64_t windows = 0;
    double epochs = 0.0;
    std::string share;
    if (blended_) {
      windows = blended_->windows_per_epoch(k);
      epochs = blended_->epochs(k, num_samples);
      share = str_cat("weight ", blended_->component(k).weight, " = ", 100.0 * blended_->fraction(k), "% of samples, ");
    } else {
      windows = magic_ ? magic_->samples_per_epoch() : static_cast<uint64_t>(sequential_->num_windows());
      epochs = static_cast<double>(num_samples) / static_cast<double>(windows);
    }
    const bool magic_order = magic_ || (blended_ && blended_->order() == data::WindowOrder::MagicPrime);
    lines.push_back(str_cat(names_[k], ": ", set.num_tokens(), " tokens in ", set.num_shards(), " shard(s), ", share,
                            magic_order ? "magic-prime order (p = " : "in order (", windows,
                            " windows an epoch); this run reads ", epochs, " epochs"));
  }
  return lines;
}

}  // namespace rwkv::trainer
