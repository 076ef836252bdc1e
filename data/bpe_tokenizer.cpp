#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/byte_level.h"
#include "core/file_io.h"
#include "data/pretokenizer.h"
#include "data/utf8.h"

namespace rwkv::data {

using nlohmann::json;

namespace {

std::atomic<uint64_t> g_next_serial{1};

// Pieces up to this many bytes are cached per thread: words repeat, and a
// cache hit skips the merge loop entirely.
constexpr size_t kMaxCachedPieceBytes = 48;
constexpr size_t kMaxCacheEntries = 1 << 20;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
};
thread_local WordCache t_cache;

std::string line_and_column(const std::string& text, size_t byte) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return str_cat("line ", line, ", column ", column);
}

// Field access with errors that name the file and the field.
const json& field(const json& object, const char* key, const std::string& origin, const std::string& where) {
  RWKV_CHECK(object.is_object() && object.contains(key), origin, ": missing field ", where, key,
             "\n  ---> HINT: is this a Hugging Face tokenizer.json (as saved by tokenizers' Tokenizer.save)?");
  return object.at(key);
}

bool optional_bool(const json& object, const char* key, bool fallback, const std::string& origin,
                   const std::string& where) {
  if (!object.contains(key) || object.at(key).is_null()) return fallback;
  RWKV_CHECK(object.at(key).is_boolean(), origin, ": field ", where, key, " must be true or false, found ",
             object.at(key).dump());
  return object.at(key).get<bool>();
}

bool null_or_empty_string(const json& object, const char* key) {
  return !object.contains(key) || object.at(key).is_null() ||
         (object.at(key).is_string() && object.at(key).get<std::string>().empty());
}

}  // namespace

// ---- added tokens --------------------------------------------------------------

void HfBpeTokenizer::AddedTokenMatcher::add(const std::string& content, int32_t id) {
  if (content.empty()) return;
  int32_t node = -1;
  for (size_t k = 0; k < content.size(); ++k) {
    unsigned char b = static_cast<unsigned char>(content[k]);
    int32_t* slot = nullptr;
    if (k == 0) {
      slot = &root[b];
    } else {
      auto [it, inserted] = children.emplace((static_cast<uint64_t>(node) << 8) | b, -1);
      slot = &it->second;
    }
    if (*slot < 0) {
      *slot = static_cast<int32_t>(token_at.size());
      token_at.push_back(-1);
    }
    node = *slot;
  }
  if (token_at[node] < 0) token_at[node] = id;  // the first token with this content wins
}

template <typename OnText, typename OnToken>
void HfBpeTokenizer::AddedTokenMatcher::split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t segment_start = 0;
  size_t i = 0;
  while (i < n) {
    int32_t node = root[s[i]];
    if (node < 0) {
      ++i;
      continue;
    }
    int32_t match_id = -1;
    size_t match_end = i;
    for (size_t j = i + 1;; ++j) {
      if (token_at[node] >= 0) {
        match_id = token_at[node];
        match_end = j;
      }
      if (j >= n) break;
      auto it = children.find((static_cast<uint64_t>(node) << 8) | s[j]);
      if (it == children.end()) break;
      node = it->second;
    }
    if (match_id < 0) {
      ++i;
      continue;
    }
    if (i > segment_start) on_text(text.substr(segment_start, i - segment_start));
    on_token(match_id);
    i = match_end;
    segment_start = i;
  }
  if (segment_start < n) on_text(text.substr(segment_start));
}

// ---- loading -------------------------------------------------------------------

HfBpeTokenizer::HfBpeTokenizer(const std::string& path) : HfBpeTokenizer(read_file(path), path) {}

HfBpeTokenizer::HfBpeTokenizer(const std::string& json_text, const std::string& origin)
    : origin_(origin), serial_(g_next_serial++) {
  parse(json_text);
}

void HfBpeTokenizer::parse(const std::string& json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    RWKV_FAIL(origin_, ": malformed JSON at byte ", e.byte, " (", line_and_column(json_text, e.byte ? e.byte - 1 : 0),
              "): ", e.what(), "\n  ---> HINT: the file is not valid JSON; re-download or re-save the tokenizer.json");
  }
  RWKV_CHECK(root.is_object(), origin_, ": expected a JSON object at the top level");

  // normalizer: none or NFC (what GPT-NeoX-20B and our trainer use).
  const json& normalizer = field(root, "normalizer", origin_, "");
  if (!normalizer.is_null()) {
    std::string type = field(normalizer, "type", origin_, "normalizer.").get<std::string>();
    RWKV_CHECK(type == "NFC", origin_, ": normalizer.type is \"", type,
               "\", this tokenizer supports null or \"NFC\"\n  ---> HINT: only byte-level BPE tokenizers "
               "(GPT-2/GPT-NeoX style) are supported");
    nfc_ = true;
  }
  // pre_tokenizer: ByteLevel.
  const json& pre = field(root, "pre_tokenizer", origin_, "");
  RWKV_CHECK(pre.is_object() && pre.value("type", "") == "ByteLevel", origin_, ": pre_tokenizer is ", pre.dump().substr(0, 200),
             ", expected {\"type\": \"ByteLevel\", ...}\n  ---> HINT: only byte-level BPE tokenizers (GPT-2/GPT-NeoX style) "
             "are supported");
  add_prefix_space_ = optional_bool(pre, "add_prefix_space", false, origin_, "pre_tokenizer.");
  use_regex_ = optional_bool(pre, "use_regex", true, origin_, "pre_tokenizer.");

  // model: BPE without the features a byte-level vocabulary never needs.
  const json& model = field(root, "model", origin_, "");
  std::string type = model.is_object() ? model.value("type", "BPE") : "";
  RWKV_CHECK(type == "BPE", origin_, ": model.type is \"", type, "\", expected \"BPE\"");
  RWKV_CHECK(!model.contains("dropout") || model["dropout"].is_null() ||
                 (model["dropout"].is_number() && model["dropout"].get<double>() == 0.0),
             origin_, ": model.dropout is ", model["dropout"].dump(), ", expected null (dropout is for training only)");
  RWKV_CHECK(null_or_empty_string(model, "continuing_subword_prefix") && null_or_empty_string(model, "end_of_word_suffix"),
             origin_, ": model.continuing_subword_prefix / end_of_word_suffix are set; byte-level BPE does not use them");
  RWKV_CHECK(!optional_bool(model, "byte_fallback", false, origin_, "model."), origin_,
             ": model.byte_fallback is true; byte-level BPE never needs it");
  ignore_merges_ = optional_bool(model, "ignore_merges", false, origin_, "model.");

  const json& vocab = field(model, "vocab", origin_, "model.");
  RWKV_CHECK(vocab.is_object() && !vocab.empty(), origin_, ": model.vocab must be a non-empty object {token: id}");
  int64_t max_id = -1;
  std::vector<std::pair<int32_t, std::string>> entries;
  entries.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    RWKV_CHECK(it.value().is_number_integer() && it.value().get<int64_t>() >= 0 && it.value().get<int64_t>() < (1ll << 31),
               origin_, ": model.vocab[", json(it.key()).dump(), "] is ", it.value().dump(),
               ", expected a non-negative integer id");
    int32_t id = it.value().get<int32_t>();
    entries.emplace_back(id, it.key());
    max_id = std::max<int64_t>(max_id, id);
  }

  // added_tokens: may extend the id range beyond model.vocab.
  const json added = root.contains("added_tokens") && !root["added_tokens"].is_null() ? root["added_tokens"] : json::array();
  RWKV_CHECK(added.is_array(), origin_, ": added_tokens must be an array");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& token = added[i];
    std::string where = str_cat("added_tokens[", i, "].");
    const json& id_json = field(token, "id", origin_, where);
    RWKV_CHECK(id_json.is_number_integer() && id_json.get<int64_t>() >= 0 && id_json.get<int64_t>() < (1ll << 31), origin_,
               ": ", where, "id is ", id_json.dump(), ", expected a non-negative integer");
    max_id = std::max<int64_t>(max_id, id_json.get<int64_t>());
  }

  id_to_bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
  id_defined_.assign(static_cast<size_t>(max_id + 1), false);
  for (auto& [id, token] : entries) {
    std::string bytes;
    // Hugging Face's ByteLevel decoder: a token whose characters are all in the
    // byte-level alphabet stands for those bytes; any other token for its UTF-8.
    if (!byte_level_decode(token, &bytes)) bytes = token;
    id_to_bytes_[id] = bytes;
    id_defined_[id] = true;
    byte_level_vocab_.emplace(token, id);
    if (ignore_merges_) bytes_vocab_.emplace(bytes, id);
  }
  const auto& alphabet = byte_to_unicode_table();
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    utf8_append(symbol, alphabet[b]);
    auto it = byte_level_vocab_.find(symbol);
    byte_ids_[b] = it == byte_level_vocab_.end() ? -1 : it->second;  // missing bytes are dropped, as HF does without unk
  }

  const json& merges = field(model, "merges", origin_, "model.");
  RWKV_CHECK(merges.is_array(), origin_, ": model.merges must be an array");
  merges_.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {  // "left right" (tokenizers < 0.20)
      std::string s = m.get<std::string>();
      size_t space = s.find(' ');
      RWKV_CHECK(space != std::string::npos && space > 0 && space + 1 < s.size() && s.find(' ', space + 1) == std::string::npos,
                 origin_, ": model.merges[", rank, "] is ", m.dump(), ", expected \"left right\"");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["left", "right"]
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      RWKV_FAIL(origin_, ": model.merges[", rank, "] is ", m.dump(), ", expected \"left right\" or [\"left\", \"right\"]");
    }
    auto find = [&](const std::string& token) {
      auto it = byte_level_vocab_.find(token);
      RWKV_CHECK(it != byte_level_vocab_.end(), origin_, ": model.merges[", rank, "] (", m.dump(), ") uses ",
                 json(token).dump(), ", which is not in model.vocab\n  ---> HINT: the vocab and merges do not belong together");
      return it->second;
    };
    int32_t left_id = find(left), right_id = find(right), merged_id = find(left + right);
    uint64_t key = (static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id);
    merges_.emplace(key, Merge{static_cast<int32_t>(rank), merged_id});  // the first (lowest) rank wins
  }

  int32_t eod = -1;
  for (size_t i = 0; i < added.size(); ++i) {
    const json& token = added[i];
    std::string where = str_cat("added_tokens[", i, "].");
    const json& content_json = field(token, "content", origin_, where);
    RWKV_CHECK(content_json.is_string(), origin_, ": ", where, "content must be a string");
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      RWKV_CHECK(!optional_bool(token, flag, false, origin_, where), origin_, ": ", where, flag,
                 " is true, which this tokenizer does not support\n  ---> HINT: GPT-NeoX-style tokenizers set it to false");
    }
    AddedToken entry{content_json.get<std::string>(), token["id"].get<int32_t>()};

    RWKV_CHECK(utf8_is_valid(entry.content), origin_, ": ", where, "content is not valid UTF-8");
    bool normalized = optional_bool(token, "normalized", !optional_bool(token, "special", false, origin_, where), origin_, where);
    if (!id_defined_[entry.id]) {
      std::string bytes;
      if (!byte_level_decode(entry.content, &bytes)) bytes = entry.content;
      id_to_bytes_[entry.id] = bytes;
      id_defined_[entry.id] = true;
    }
    if (entry.content == "<|endoftext|>" || (eod < 0 && entry.content == "</s>")) eod = entry.id;
    if (normalized) {
      normalized_added_.add(nfc_ ? nfc_normalize(entry.content) : entry.content, entry.id);
    } else {
      raw_added_.add(entry.content, entry.id);
    }
  }
  if (eod < 0) {
    auto it = byte_level_vocab_.find("<|endoftext|>");
    if (it != byte_level_vocab_.end()) eod = it->second;
  }
  RWKV_CHECK(eod >= 0, origin_, ": no end-of-document token: expected an added token \"<|endoftext|>\" (or \"</s>\")",
             "\n  ---> HINT: add {\"id\": 0, \"content\": \"<|endoftext|>\", \"special\": true, ...} to added_tokens");
  eod_id_ = eod;
}

int32_t HfBpeTokenizer::token_to_id(const std::string& byte_level_token) const {
  auto it = byte_level_vocab_.find(byte_level_token);
  return it == byte_level_vocab_.end() ? -1 : it->second;
}

// ---- encoding ------------------------------------------------------------------

void HfBpeTokenizer::encode(std::string_view text, std::vector<int32_t>& ids) const {
  size_t bad = 0;
  RWKV_CHECK(utf8_is_valid(text, &bad), "invalid UTF-8 at byte ", bad,
             " of the text\n  ---> HINT: byte-level BPE takes Unicode text; convert the input to UTF-8 first");
  raw_added_.split(
      text, [&](std::string_view segment) { encode_normalized_segment(segment, ids); },
      [&](int32_t id) { ids.push_back(id); });
}

void HfBpeTokenizer::encode_normalized_segment(std::string_view segment, std::vector<int32_t>& ids) const {
  std::string normalized = nfc_ ? nfc_normalize(segment) : std::string(segment);
  normalized_added_.split(
      normalized,
      [&](std::string_view part) {
        std::string prefixed;
        if (add_prefix_space_ && part[0] != ' ') {
          prefixed = " ";
          prefixed += part;
          part = prefixed;
        }
        if (!use_regex_) {
          encode_piece(part, ids);
          return;
        }
        thread_local std::vector<std::string_view> pieces;
        pieces.clear();
        byte_level_pretokenize(part, pieces);
        for (std::string_view piece : pieces) encode_piece(piece, ids);
      },
      [&](int32_t id) { ids.push_back(id); });
}

void HfBpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.size() > kMaxCachedPieceBytes) {
    bpe(piece, ids);
    return;
  }
  WordCache& cache = t_cache;
  if (cache.owner != serial_ || cache.words.size() > kMaxCacheEntries) {
    cache.words.clear();
    cache.owner = serial_;
  }
  auto it = cache.words.find(piece);
  if (it != cache.words.end()) {
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t before = ids.size();
  bpe(piece, ids);
  cache.words.emplace(std::string(piece), std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(before), ids.end()));
}

// The merge loop of Hugging Face's Word::merge_all: a min-heap of candidate
// merges ordered by (rank, position); stale candidates (a side already merged
// away) are skipped when popped.
void HfBpeTokenizer::bpe(std::string_view piece, std::vector<int32_t>& ids) const {
  if (ignore_merges_) {
    auto it = bytes_vocab_.find(std::string(piece));
    if (it != bytes_vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap_storage;
  symbols.clear();
  for (char c : piece) {
    int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id < 0) continue;
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // A min-heap on a reused per-thread vector: (rank, pos) smallest on top.
  auto& queue = heap_storage;
  queue.clear();
  auto after = [](const Candidate& a, const Candidate& b) { return a > b; };
  auto push_pair = [&](int32_t pos) {
    int32_t next = symbols[pos].next;
    if (next < 0) return;
    uint64_t key = (static_cast<uint64_t>(symbols[pos].id) << 32) | static_cast<uint32_t>(symbols[next].id);
    auto it = merges_.find(key);
    if (it == merges_.end()) return;
    queue.push_back({it->second.rank, pos, it->second.merged_id});
    std::push_heap(queue.begin(), queue.end(), after);
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) push_pair(pos);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), after);
    Candidate top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    uint64_t key = (static_cast<uint64_t>(left.id) << 32) | static_cast<uint32_t>(right.id);
    auto it = merges_.find(key);
    if (it == merges_.end() || it->second.rank != top.rank || it->second.merged_id != top.merged_id) continue;
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t pos = 0; pos >= 0; pos = symbols[pos].next) ids.push_back(symbols[pos].id);
}

// ---- decoding ------------------------------------------------------------------

std::string HfBpeTokenizer::decode(std::span<const int32_t> ids) const {
  return decode_with_table(ids, id_to_bytes_, id_defined_, origin_);
}

}  // namespace rwkv::data
