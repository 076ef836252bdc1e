#include "data/byte_level.h"

#include "data/utf8.h"

namespace rwkv::data {

namespace {
bool stands_for_itself(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

std::array<char32_t, 256> make_table() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = stands_for_itself(b) ? static_cast<char32_t>(b) : next++;
  return table;
}
}  // namespace

const std::array<char32_t, 256>& byte_to_unicode_table() {
  static const std::array<char32_t, 256> table = make_table();
  return table;
}

int unicode_to_byte(char32_t cp) {
  if (cp < 256) return stands_for_itself(static_cast<int>(cp)) ? static_cast<int>(cp) : -1;
  // The remapped bytes take U+0100 .. U+0143 in byte order.
  if (cp >= 256 + 68) return -1;
  int index = static_cast<int>(cp - 256);
  for (int b = 0; b < 256; ++b) {
    if (!stands_for_itself(b) && index-- == 0) return b;
  }
  return -1;
}

std::string byte_level_encode(std::string_view bytes) {
  const auto& table = byte_to_unicode_table();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8_append(out, table[static_cast<unsigned char>(c)]);
  return out;
}

bool byte_level_decode(std::string_view text, std::string* bytes) {
  if (!utf8_is_valid(text)) return false;
  bytes->clear();
  size_t i = 0;
  while (i < text.size()) {
    int b = unicode_to_byte(utf8_next(text, i));
    if (b < 0) return false;
    bytes->push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace rwkv::data
