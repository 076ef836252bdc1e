// GPT-2's byte-level alphabet: every byte gets a printable Unicode character,
// so that a BPE vocabulary of "strings" can hold arbitrary bytes. Printable
// Latin-1 bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stand for themselves; the
// other 68 bytes map, in byte order, to U+0100, U+0101, ... (space -> U+0120 'Ġ').
// tokenizer.json files store their vocabulary and merges in this alphabet.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace rwkv::data {

const std::array<char32_t, 256>& byte_to_unicode_table();

// The byte a byte-level character stands for, or -1 if it is not one of the 256.
int unicode_to_byte(char32_t cp);

// bytes -> UTF-8 text in the byte-level alphabet.
std::string byte_level_encode(std::string_view bytes);
// UTF-8 text in the byte-level alphabet -> bytes; false if a character is not
// in the alphabet (or the text is not valid UTF-8).
bool byte_level_decode(std::string_view text, std::string* bytes);

}  // namespace rwkv::data
