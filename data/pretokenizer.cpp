#include "data/pretokenizer.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>

#include "data/utf8.h"

namespace rwkv::data {

namespace {

enum class CharClass : uint8_t { Letter, Number, Space, Other };

CharClass classify_slow(char32_t cp) {
  if (u_isUWhiteSpace(static_cast<UChar32>(cp))) return CharClass::Space;
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER: case U_OTHER_LETTER:
      return CharClass::Letter;
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
      return CharClass::Number;
    default:
      return CharClass::Other;
  }
}

const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = classify_slow(c);
    return t;
  }();
  return table;
}

struct CodePoint {
  uint32_t offset;  // byte offset of the code point in the text
  CharClass cls;
  char32_t cp;
};

}  // namespace

void byte_level_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  // Decode once, classifying every code point.
  thread_local std::vector<CodePoint> cps;
  cps.clear();
  const auto& ascii = ascii_classes();
  for (size_t i = 0; i < text.size();) {
    uint32_t offset = static_cast<uint32_t>(i);
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      cps.push_back({offset, ascii[c], c});
      ++i;
    } else {
      char32_t cp = utf8_next(text, i);
      cps.push_back({offset, classify_slow(cp), cp});
    }
  }
  const size_t n = cps.size();
  auto byte_at = [&](size_t k) -> size_t { return k < n ? cps[k].offset : text.size(); };
  auto is = [&](size_t k, CharClass cls) { return k < n && cps[k].cls == cls; };
  auto cp_is = [&](size_t k, char32_t want) { return k < n && cps[k].cp == want; };
  auto emit = [&](size_t begin, size_t end) { pieces.emplace_back(text.substr(byte_at(begin), byte_at(end) - byte_at(begin))); };

  size_t i = 0;
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d  (ASCII apostrophe, lower case only)
    if (cps[i].cp == '\'') {
      if (cp_is(i + 1, 's') || cp_is(i + 1, 't') || cp_is(i + 1, 'm') || cp_is(i + 1, 'd')) {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if ((cp_is(i + 1, 'r') && cp_is(i + 2, 'e')) || (cp_is(i + 1, 'v') && cp_is(i + 2, 'e')) ||
          (cp_is(i + 1, 'l') && cp_is(i + 2, 'l'))) {
        emit(i, i + 3);
        i += 3;
        continue;
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020, then a run of one class.
    size_t start = cps[i].cp == ' ' ? i + 1 : i;
    if (start < n && cps[start].cls != CharClass::Space) {
      CharClass cls = cps[start].cls;
      size_t end = start + 1;
      while (is(end, cls)) ++end;
      emit(i, end);
      i = end;
      continue;
    }
    // '\s+(?!\S)' then '\s+': a whitespace run; when a non-space follows, its
    // last character is left to start the next piece (" word"), unless the run
    // is a single character.
    if (cps[i].cls == CharClass::Space) {
      size_t end = i + 1;
      while (is(end, CharClass::Space)) ++end;
      if (end < n && end - i >= 2) --end;
      emit(i, end);
      i = end;
      continue;
    }
    // Unreachable: every code point is a letter, a number, a space or other.
    emit(i, i + 1);
    ++i;
  }
}

}  // namespace rwkv::data

