// Plain bytes: id = byte + 1, so that id 0 stays free for end-of-document and
// every id decodes unambiguously. Vocabulary size 257.
#pragma once

#include "data/tokenizer.h"

namespace rwkv::data {

class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "bytes"; }
  using Tokenizer::encode;  // keep the one-argument form visible
  void encode(std::string_view text, std::vector<int32_t>& ids) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return 257; }
  int32_t eod_id() const override { return 0; }
};

}  // namespace rwkv::data
