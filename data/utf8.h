// UTF-8 helpers for the tokenizers: strict validation (the same rules as
// Rust's str, which the Hugging Face reference requires), decoding one code
// point at a time, and Unicode NFC normalization through ICU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv::data {

// Returns true when `text` is well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF); otherwise false with the byte offset of
// the first bad sequence in *error_offset.
bool utf8_is_valid(std::string_view text, size_t* error_offset = nullptr);

// Decodes the code point starting at text[i] of valid UTF-8 and advances i.
inline char32_t utf8_next(std::string_view text, size_t& i) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  if (c < 0xE0) {
    char32_t cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
    i += 2;
    return cp;
  }
  if (c < 0xF0) {
    char32_t cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    i += 3;
    return cp;
  }
  char32_t cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
  i += 4;
  return cp;
}

void utf8_append(std::string& out, char32_t cp);

bool is_ascii(std::string_view text);

// Unicode Normalization Form C (canonical composition). Valid UTF-8 in and out;
// ASCII and already-normalized text come back unchanged without a copy of work.
std::string nfc_normalize(std::string_view text);

}  // namespace rwkv::data
