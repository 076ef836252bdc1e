// A Hugging Face tokenizer.json byte-level BPE, token-exact with the Rust
// `tokenizers` library for GPT-NeoX-20B (tests/data/golden holds its ids).
//
// encode(text), step by step as Hugging Face does it:
//   1. split off the added tokens that match the raw text (normalized: false,
//      e.g. <|endoftext|>), leftmost-longest;
//   2. NFC-normalize each remaining segment, then split off the added tokens
//      that match normalized text (normalized: true, e.g. NeoX's runs of 2-24
//      spaces), leftmost-longest;
//   3. pre-tokenize what is left (pretokenizer.h) into pieces;
//   4. BPE each piece: start from one symbol a byte, then repeatedly merge the
//      adjacent pair of lowest merge rank (leftmost first on ties).
// decode(ids) concatenates each id's bytes (added tokens: their content).
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer.h"

namespace rwkv::data {

class HfBpeTokenizer final : public Tokenizer {
 public:
  explicit HfBpeTokenizer(const std::string& path);  // reads a tokenizer.json file
  // Parses tokenizer.json text; `origin` names it in error messages.
  HfBpeTokenizer(const std::string& json_text, const std::string& origin);

  std::string name() const override { return "hf-bpe:" + origin_; }
  using Tokenizer::encode;  // keep the one-argument form visible
  void encode(std::string_view text, std::vector<int32_t>& ids) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  int32_t eod_id() const override { return eod_id_; }

  size_t num_merges() const { return merges_.size(); }
  // The id of a token given in the byte-level alphabet (as in tokenizer.json), or -1.
  int32_t token_to_id(const std::string& byte_level_token) const;

 private:
  struct AddedToken {
    std::string content;  // raw, or NFC-normalized for normalized tokens
    int32_t id;
  };
  // Leftmost-longest matching of added tokens with a byte trie: at each
  // position walk as far as the text allows and keep the last token end seen.
  // Most bytes start no added token and are rejected by one array lookup.
  struct AddedTokenMatcher {
    std::array<int32_t, 256> root{};                 // child of the root by byte, -1: none
    std::unordered_map<uint64_t, int32_t> children;  // (node << 8 | byte) -> node, below the root
    std::vector<int32_t> token_at;                   // node -> added token id ending there, or -1
    AddedTokenMatcher() { root.fill(-1); }
    void add(const std::string& content, int32_t id);
    bool empty() const { return token_at.empty(); }
    // Calls on_text(segment) for text between matches and on_token(id) for matches.
    template <typename OnText, typename OnToken>
    void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const;
  };
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };

  void parse(const std::string& json_text);
  void encode_normalized_segment(std::string_view segment, std::vector<int32_t>& ids) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const;
  void bpe(std::string_view piece, std::vector<int32_t>& ids) const;

  std::string origin_;
  uint64_t serial_;  // identifies this instance's entries in the per-thread word cache
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> id_defined_;
  std::unordered_map<std::string, int32_t> byte_level_vocab_;  // as written in tokenizer.json
  std::unordered_map<std::string, int32_t> bytes_vocab_;       // raw bytes -> id (for ignore_merges)
  std::array<int32_t, 256> byte_ids_{};                        // -1 where the vocabulary lacks a byte
  std::unordered_map<uint64_t, Merge> merges_;                 // (left id << 32 | right id) -> merge
  AddedTokenMatcher raw_added_;
  AddedTokenMatcher normalized_added_;
  bool nfc_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  bool ignore_merges_ = false;
  int32_t eod_id_ = 0;
};

}  // namespace rwkv::data
