#include "data/token_dataset.h"

#include <algorithm>

#include "core/error.h"
#include "data/prepare.h"

namespace rwkv::data {

TokenDataset::TokenDataset(const std::vector<std::string>& shard_prefixes, int64_t vocab_size) : vocab_size_(vocab_size) {
  RWKV_CHECK(!shard_prefixes.empty(), "dataset: no shards given");
  for (const std::string& prefix : shard_prefixes) {
    shards_.push_back(std::make_unique<BinIdxReader>(prefix));
    const BinIdxReader& shard = *shards_.back();
    const uint32_t index = static_cast<uint32_t>(shards_.size() - 1);
    const uint64_t item = shard.dtype_size();
    // Merge sequences that follow each other in the .bin into one span.
    for (uint64_t i = 0; i < shard.num_sequences(); ++i) {
      int64_t length = shard.sequence_length(i);
      if (length == 0) continue;
      uint64_t bin_token = static_cast<uint64_t>(shard.sequence_pointer(i)) / item;
      if (!spans_.empty() && spans_.back().shard == index &&
          spans_.back().bin_token + static_cast<uint64_t>(spans_.back().length) == bin_token) {
        spans_.back().length += length;
      } else {
        spans_.push_back({num_tokens_, length, index, bin_token});
      }
      num_tokens_ += length;
    }
  }
  RWKV_CHECK(num_tokens_ > 0, "dataset ", shard_prefixes.front(), (shard_prefixes.size() > 1 ? " ..." : ""),
             ": the shards hold no tokens\n  ---> HINT: prepare the data again; the inputs were empty");
}

TokenDataset TokenDataset::open(const std::string& spec, int64_t vocab_size) {
  return TokenDataset(find_shards(spec), vocab_size);
}

void TokenDataset::read(int64_t start, int64_t count, int32_t* out) const {
  RWKV_CHECK(start >= 0 && count >= 0 && start + count <= num_tokens_, "dataset: read of tokens [", start, ", ",
             start + count, ") outside the stream of ", num_tokens_, " tokens");
  // The span holding `start`: the last one beginning at or before it.
  auto it = std::upper_bound(spans_.begin(), spans_.end(), start,
                             [](int64_t value, const Span& span) { return value < span.stream_begin; });
  --it;
  while (count > 0) {
    int64_t offset = start - it->stream_begin;
    int64_t take = std::min(count, it->length - offset);
    shards_[it->shard]->read_tokens(it->bin_token + static_cast<uint64_t>(offset), static_cast<uint64_t>(take), out,
                                    vocab_size_);
    out += take;
    start += take;
    count -= take;
    ++it;
  }
}

}  // namespace rwkv::data
