#include "data/bpe_trainer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "data/byte_level.h"
#include "data/pretokenizer.h"
#include "data/utf8.h"

namespace rwkv::data {

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  uint64_t pair;
  // Max-heap on count; on equal counts the smaller pair key comes first.
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(options) {
  RWKV_CHECK(options_.vocab_size >= 258 && options_.vocab_size < (1ll << 31), "train-tokenizer: --vocab-size ",
             options_.vocab_size, " is out of range: expected at least 258 (<|endoftext|> + 256 bytes + 1 merge)");
}

void BpeTrainer::add_text(std::string_view text) {
  size_t bad = 0;
  RWKV_CHECK(utf8_is_valid(text, &bad), "invalid UTF-8 at byte ", bad, " of the text");
  std::string normalized = nfc_normalize(text);
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  byte_level_pretokenize(normalized, pieces);
  for (std::string_view piece : pieces) ++piece_counts_[std::string(piece)];
}

std::string BpeTrainer::train() {
  // Words in a fixed order (sorted pieces) so that nothing depends on hashing.
  std::vector<std::pair<std::string, int64_t>> sorted(piece_counts_.begin(), piece_counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [piece, count] : sorted) {
    Word word{{}, count};
    for (char c : piece) word.symbols.push_back(1 + static_cast<unsigned char>(c));
    words.push_back(std::move(word));
  }

  std::vector<std::string> token_bytes(257);  // id -> bytes
  token_bytes[0] = "<|endoftext|>";
  for (int b = 0; b < 256; ++b) token_bytes[1 + b] = std::string(1, static_cast<char>(b));
  // "<|endoftext|>" is taken: a merge that spells it reuses id 0 rather than
  // writing the same vocabulary key twice.
  std::unordered_map<std::string, int32_t> bytes_to_id{{token_bytes[0], 0}};
  for (int32_t id = 1; id <= 256; ++id) bytes_to_id.emplace(token_bytes[id], id);

  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may hold stale entries
  for (int32_t w = 0; w < static_cast<int32_t>(words.size()); ++w) {
    const auto& s = words[w].symbols;
    for (size_t k = 0; k + 1 < s.size(); ++k) {
      uint64_t key = pair_key(s[k], s[k + 1]);
      pair_counts[key] += words[w].count;
      auto& list = pair_words[key];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  std::priority_queue<Candidate> queue;
  for (auto& [key, count] : pair_counts) queue.push({count, key});

  std::vector<std::pair<int32_t, int32_t>> merges;
  int64_t vocab = 257;
  while (vocab < options_.vocab_size && !queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    auto found = pair_counts.find(top.pair);
    int64_t current = found == pair_counts.end() ? 0 : found->second;
    if (current != top.count) {  // stale: re-queue with the current count
      if (current > 0) queue.push({current, top.pair});
      continue;
    }
    if (current < options_.min_frequency) break;
    const int32_t left = static_cast<int32_t>(top.pair >> 32);
    const int32_t right = static_cast<int32_t>(top.pair & 0xffffffffu);
    std::string merged_bytes = token_bytes[left] + token_bytes[right];
    int32_t merged;
    auto existing = bytes_to_id.find(merged_bytes);
    if (existing != bytes_to_id.end()) {
      merged = existing->second;  // the same bytes reached by another pair: one token
    } else {
      merged = static_cast<int32_t>(token_bytes.size());
      token_bytes.push_back(merged_bytes);
      bytes_to_id.emplace(merged_bytes, merged);
      ++vocab;
    }
    merges.emplace_back(left, right);

    std::vector<int32_t> affected = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    std::unordered_set<uint64_t> touched;
    for (int32_t w : affected) {
      Word& word = words[w];
      auto& s = word.symbols;
      bool contains = false;
      for (size_t k = 0; k + 1 < s.size(); ++k) contains |= (s[k] == left && s[k + 1] == right);
      if (!contains) continue;
      // Replace the word's pair counts: remove the old pairs, merge, add the new.
      for (size_t k = 0; k + 1 < s.size(); ++k) {
        uint64_t key = pair_key(s[k], s[k + 1]);
        pair_counts[key] -= word.count;
        touched.insert(key);
      }
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == left && s[k + 1] == right) {
          next.push_back(merged);
          ++k;
        } else {
          next.push_back(s[k]);
        }
      }
      s.swap(next);
      for (size_t k = 0; k + 1 < s.size(); ++k) {
        uint64_t key = pair_key(s[k], s[k + 1]);
        pair_counts[key] += word.count;
        touched.insert(key);
        auto& list = pair_words[key];
        if (list.empty() || list.back() != w) list.push_back(w);
      }
    }
    pair_counts.erase(top.pair);
    // Re-queue every pair whose count changed, in a fixed order.
    std::vector<uint64_t> changed(touched.begin(), touched.end());
    std::sort(changed.begin(), changed.end());
    for (uint64_t key : changed) {
      auto it = pair_counts.find(key);
      if (it == pair_counts.end()) continue;
      if (it->second <= 0) {
        pair_counts.erase(it);
      } else {
        queue.push({it->second, key});
      }
    }
  }
  if (vocab < options_.vocab_size) {
    log_warn("train-tokenizer: the corpus supports only ", vocab, " tokens (asked for ", options_.vocab_size,
             "): no pair is seen at least ", options_.min_frequency, " times any more");
  }
  trained_vocab_size_ = vocab;

  // tokenizer.json in the layout of GPT-NeoX-20B's, keys in id order.
  using ordered_json = nlohmann::ordered_json;
  ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = ordered_json::array({ordered_json{{"id", 0},
                                                          {"content", "<|endoftext|>"},
                                                          {"single_word", false},
                                                          {"lstrip", false},
                                                          {"rstrip", false},
                                                          {"normalized", false},
                                                          {"special", true}}});
  root["normalizer"] = {{"type", "NFC"}};
  root["pre_tokenizer"] = byte_level;
  root["post_processor"] = byte_level;
  root["decoder"] = byte_level;
  ordered_json vocab_json = ordered_json::object();
  vocab_json["<|endoftext|>"] = 0;
  for (size_t id = 1; id < token_bytes.size(); ++id) vocab_json[byte_level_encode(token_bytes[id])] = id;
  ordered_json merges_json = ordered_json::array();
  for (auto& [left, right] : merges) {
    merges_json.push_back(byte_level_encode(token_bytes[left]) + " " + byte_level_encode(token_bytes[right]));
  }
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr},
                   {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", vocab_json},
                   {"merges", merges_json}};
  return root.dump(2, ' ', false) + "\n";
}

}  // namespace rwkv::data
