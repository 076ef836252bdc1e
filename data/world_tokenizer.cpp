#include "data/world_tokenizer.h"

#include "core/error.h"
#include "core/file_io.h"
#include "data/utf8.h"

namespace rwkv::data {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool parse_python_literal(std::string_view literal, std::string* bytes, std::string* error) {
  bytes->clear();
  bool is_bytes = false;
  if (!literal.empty() && literal[0] == 'b') {
    is_bytes = true;
    literal.remove_prefix(1);
  }
  if (literal.size() < 2 || (literal[0] != '\'' && literal[0] != '"') || literal.back() != literal[0]) {
    *error = "expected a quoted Python literal such as 'abc' or b'\\x80'";
    return false;
  }
  const char quote = literal[0];
  std::string_view body = literal.substr(1, literal.size() - 2);
  for (size_t i = 0; i < body.size();) {
    char c = body[i];
    if (c == quote) {
      *error = "unescaped quote inside the literal";
      return false;
    }
    if (c != '\\') {
      bytes->push_back(c);  // raw UTF-8 of a str literal passes through
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) {
      *error = "backslash at the end of the literal";
      return false;
    }
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\\': bytes->push_back('\\'); break;
      case '\'': bytes->push_back('\''); break;
      case '"': bytes->push_back('"'); break;
      case 'n': bytes->push_back('\n'); break;
      case 'r': bytes->push_back('\r'); break;
      case 't': bytes->push_back('\t'); break;
      case 'a': bytes->push_back('\a'); break;
      case 'b': bytes->push_back('\b'); break;
      case 'f': bytes->push_back('\f'); break;
      case 'v': bytes->push_back('\v'); break;
      case '0': bytes->push_back('\0'); break;
      case 'x': case 'u': case 'U': {
        size_t digits = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        if (e != 'x' && is_bytes) {
          *error = "\\u escapes are not allowed in a bytes literal";
          return false;
        }
        if (i + digits > body.size()) {
          *error = "truncated escape sequence";
          return false;
        }
        uint32_t value = 0;
        for (size_t k = 0; k < digits; ++k) {
          int h = hex_value(body[i + k]);
          if (h < 0) {
            *error = "bad hexadecimal digit in an escape";
            return false;
          }
          value = value * 16 + static_cast<uint32_t>(h);
        }
        i += digits;
        if (is_bytes) {
          bytes->push_back(static_cast<char>(value));
        } else {
          // In a str literal an escape is a code point: emit its UTF-8.
          if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
            *error = "escape is not a Unicode scalar value";
            return false;
          }
          utf8_append(*bytes, static_cast<char32_t>(value));
        }
        break;
      }
      default:
        *error = std::string("unknown escape \\") + e;
        return false;
    }
  }
  return true;
}

WorldTokenizer::WorldTokenizer(const std::string& path) : WorldTokenizer(read_file(path), path) {}

WorldTokenizer::WorldTokenizer(const std::string& vocab_text, const std::string& origin) : origin_(origin) {
  parse(vocab_text);
}

void WorldTokenizer::insert(const std::string& bytes, int32_t id) {
  int32_t node = 0;
  for (size_t k = 0; k < bytes.size(); ++k) {
    unsigned char b = static_cast<unsigned char>(bytes[k]);
    int32_t child;
    if (k == 0) {
      child = root_children_[b];
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        root_children_[b] = child;
      }
    } else {
      uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
      auto it = children_.find(key);
      if (it == children_.end()) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_.emplace_back();
        children_.emplace(key, child);
      } else {
        child = it->second;
      }
    }
    node = child;
  }
  nodes_[node].token_id = id;
}

void WorldTokenizer::parse(const std::string& vocab_text) {
  nodes_.assign(1, Node{});
  root_children_.assign(256, -1);
  id_to_bytes_.assign(1, std::string());  // id 0: end of document, no text
  id_defined_.assign(1, true);
  size_t line_start = 0;
  size_t line_number = 0;
  while (line_start < vocab_text.size()) {
    size_t line_end = vocab_text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = vocab_text.size();
    std::string_view line(vocab_text.data() + line_start, line_end - line_start);
    line_start = line_end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const char* hint = "\n  ---> HINT: each line must read `ID LITERAL BYTE_LENGTH`, e.g. `258 'th' 2`, as in rwkv_vocab_v20230424.txt";
    size_t first_space = line.find(' ');
    size_t last_space = line.rfind(' ');
    RWKV_CHECK(first_space != std::string_view::npos && last_space > first_space, origin_, ":", line_number,
               ": cannot split the line into id, literal and length", hint);
    int64_t id = -1, length = -1;
    try {
      id = std::stoll(std::string(line.substr(0, first_space)));
      length = std::stoll(std::string(line.substr(last_space + 1)));
    } catch (const std::exception&) {
    }
    RWKV_CHECK(id > 0 && id < (1 << 24), origin_, ":", line_number, ": token id '", line.substr(0, first_space),
               "' is not an integer in [1, 2^24)", hint);
    RWKV_CHECK(length > 0, origin_, ":", line_number, ": byte length '", line.substr(last_space + 1),
               "' is not a positive integer", hint);
    std::string bytes, error;
    RWKV_CHECK(parse_python_literal(line.substr(first_space + 1, last_space - first_space - 1), &bytes, &error), origin_,
               ":", line_number, ": ", error, hint);
    RWKV_CHECK(static_cast<int64_t>(bytes.size()) == length, origin_, ":", line_number, ": the literal has ",
               bytes.size(), " bytes but the line says ", length, hint);
    if (static_cast<size_t>(id) >= id_to_bytes_.size()) {
      id_to_bytes_.resize(static_cast<size_t>(id) + 1);
      id_defined_.resize(static_cast<size_t>(id) + 1, false);
    }
    RWKV_CHECK(!id_defined_[id], origin_, ":", line_number, ": token id ", id, " appears twice", hint);
    id_to_bytes_[id] = bytes;
    id_defined_[id] = true;
    insert(bytes, static_cast<int32_t>(id));
  }
  RWKV_CHECK(id_to_bytes_.size() > 1, origin_, ": no tokens found",
             "\n  ---> HINT: pass an RWKV World vocabulary such as data/vocab/rwkv_vocab_v20230424.txt");
}

void WorldTokenizer::encode(std::string_view text, std::vector<int32_t>& ids) const {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Walk the trie as far as the text allows; remember the last token seen.
    int32_t best_id = -1;
    size_t best_end = i;
    int32_t node = root_children_[s[i]];
    size_t j = i + 1;
    while (node >= 0) {
      if (nodes_[node].token_id >= 0) {
        best_id = nodes_[node].token_id;
        best_end = j;
      }
      if (j >= n) break;
      auto it = children_.find((static_cast<uint64_t>(node) << 8) | s[j]);
      if (it == children_.end()) break;
      node = it->second;
      ++j;
    }
    RWKV_CHECK(best_id >= 0, origin_, ": no token starts with byte 0x", std::hex, static_cast<int>(s[i]), std::dec,
               " at byte ", i, " of the text\n  ---> HINT: the vocabulary lacks single-byte tokens; is it complete?");
    ids.push_back(best_id);
    i = best_end;
  }
}

std::string WorldTokenizer::decode(std::span<const int32_t> ids) const {
  return decode_with_table(ids, id_to_bytes_, id_defined_, origin_);
}

}  // namespace rwkv::data
