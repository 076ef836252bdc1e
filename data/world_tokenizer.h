// The RWKV World tokenizer: a vocabulary of byte strings (rwkv_vocab_v20230424.txt),
// encoded by greedy longest match over the bytes of the text, as RWKV's
// TRIE_TOKENIZER does. No normalization, no pre-tokenization.
//
// Vocabulary file, one token a line:  ID LITERAL BYTE_LENGTH
//   LITERAL is a Python literal: a str ('a', "'", '\n', '\u00e9') whose UTF-8
//   bytes are the token, or a bytes literal (b'\x80') for tokens that are not
//   valid UTF-8 on their own. Ids 1..65529; id 0 is end-of-document.
#pragma once

#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace rwkv::data {

class WorldTokenizer final : public Tokenizer {
 public:
  explicit WorldTokenizer(const std::string& path);
  WorldTokenizer(const std::string& vocab_text, const std::string& origin);

  std::string name() const override { return "world:" + origin_; }
  using Tokenizer::encode;  // keep the one-argument form visible
  void encode(std::string_view text, std::vector<int32_t>& ids) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  int32_t eod_id() const override { return 0; }

 private:
  void parse(const std::string& vocab_text);
  void insert(const std::string& bytes, int32_t id);

  // A byte trie: node 0 is the root; children found through a hash of
  // (node << 8 | byte), which keeps 65k tokens in a few MB.
  struct Node {
    int32_t token_id = -1;  // the token ending here, or -1
  };
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> children_;
  std::vector<int32_t> root_children_;  // 256 direct entries for the first byte (the hot path)

  std::string origin_;
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> id_defined_;
};

// Parses one Python str/bytes literal (as repr() writes them) into bytes.
// Returns false on malformed input and sets *error.
bool parse_python_literal(std::string_view literal, std::string* bytes, std::string* error);

}  // namespace rwkv::data
