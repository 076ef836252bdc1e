// Many binidx shards seen as one token stream: shard 0's sequences in index
// order, then shard 1's, and so on. For shards whose sequences tile the .bin
// (every file prepare and Megatron write) this is simply the .bin files back
// to back, which is also how RWKV-LM reads a single .bin.
//
// Reads convert to int32 and check every token against the vocabulary, so a
// shard made with another tokenizer fails with the file and position instead
// of feeding out-of-range ids to the embedding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/binidx_reader.h"

namespace rwkv::data {

class TokenDataset {
 public:
  // vocab_size > 0: every token read must be below it.
  TokenDataset(const std::vector<std::string>& shard_prefixes, int64_t vocab_size = 0);
  // A spec as find_shards() takes it: a prefix, prepare's --output, or a glob.
  static TokenDataset open(const std::string& spec, int64_t vocab_size = 0);

  int64_t num_tokens() const { return num_tokens_; }
  size_t num_shards() const { return shards_.size(); }
  const BinIdxReader& shard(size_t i) const { return *shards_.at(i); }
  int64_t vocab_size() const { return vocab_size_; }

  // Copies tokens [start, start + count) of the stream into out (int32).
  void read(int64_t start, int64_t count, int32_t* out) const;

 private:
  // A run of tokens contiguous in one shard's .bin.
  struct Span {
    int64_t stream_begin;  // first token of the span in the stream
    int64_t length;        // tokens
    uint32_t shard;
    uint64_t bin_token;    // first token of the span in the shard's .bin (dtype units)
  };
  std::vector<std::unique_ptr<BinIdxReader>> shards_;
  std::vector<Span> spans_;
  int64_t num_tokens_ = 0;
  int64_t vocab_size_ = 0;
};

}  // namespace rwkv::data
