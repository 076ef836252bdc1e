// Trains a byte-level BPE on a corpus and writes it as a Hugging Face
// tokenizer.json that HfBpeTokenizer (and Hugging Face's own library) loads.
//
//   vocabulary = <|endoftext|> (id 0, the end-of-document token)
//              + the 256 byte symbols (ids 1..256, in byte order)
//              + one token per merge, until vocab_size is reached
//   pieces     = the same NFC + GPT-2 pre-tokenizer as encoding, so a trained
//                vocabulary never learns merges across piece boundaries
//   each round merges the most frequent adjacent pair over all pieces
//   (weighted by piece count); ties go to the smaller (left id, right id), so
//   training is deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rwkv::data {

struct BpeTrainerOptions {
  int64_t vocab_size = 8192;   // including <|endoftext|> and the 256 bytes
  int64_t min_frequency = 2;   // a pair seen fewer times is never merged
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Counts the pieces of one document (valid UTF-8; throws otherwise).
  void add_text(std::string_view text);
  uint64_t num_unique_pieces() const { return piece_counts_.size(); }

  // Runs the merges and returns the tokenizer.json text.
  std::string train();
  int64_t trained_vocab_size() const { return trained_vocab_size_; }

 private:
  BpeTrainerOptions options_;
  std::unordered_map<std::string, int64_t> piece_counts_;
  int64_t trained_vocab_size_ = 0;
};

}  // namespace rwkv::data
