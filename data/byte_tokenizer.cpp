#include "data/byte_tokenizer.h"

#include "core/error.h"

namespace rwkv::data {

void ByteTokenizer::encode(std::string_view text, std::vector<int32_t>& ids) const {
  ids.reserve(ids.size() + text.size());
  for (char c : text) ids.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)) + 1);
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    RWKV_CHECK(id >= 0 && id <= 256, "bytes tokenizer: id ", id, " at position ", i, " is outside [0, 257)");
    if (id > 0) out += static_cast<char>(id - 1);  // 0 (end of document) has no text
  }
  return out;
}

}  // namespace rwkv::data
