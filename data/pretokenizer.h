// The byte-level pre-tokenizer of GPT-2 / GPT-NeoX: splits normalized text
// into the pieces that BPE then encodes one by one. Hugging Face compiles this
// regular expression (Oniguruma) and keeps every match:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// We run the same alternation by hand, in order, at each position (it never
// needs backtracking except for the look-ahead of `\s+(?!\S)`, which gives the
// last space of a run to the word after it). \p{L} and \p{N} are the Unicode
// general categories L* and N*, \s is White_Space; ICU answers all three.
#pragma once

#include <string_view>
#include <vector>

namespace rwkv::data {

// Appends the pieces of `text` (valid UTF-8) to `pieces`; they are views into
// `text` and tile it exactly.
void byte_level_pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace rwkv::data
