#include "data/tokenizer.h"

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/world_tokenizer.h"

namespace rwkv::data {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "bytes") return std::make_unique<ByteTokenizer>();
  if (starts_with(spec, "hf:")) return std::make_unique<HfBpeTokenizer>(spec.substr(3));
  if (starts_with(spec, "world:")) return std::make_unique<WorldTokenizer>(spec.substr(6));
  if (ends_with(spec, ".json")) return std::make_unique<HfBpeTokenizer>(spec);
  if (ends_with(spec, ".txt")) return std::make_unique<WorldTokenizer>(spec);
  RWKV_FAIL("--tokenizer: cannot tell what kind of tokenizer '", spec,
            "' is\n  ---> HINT: use \"bytes\", \"hf:PATH\" (or a PATH ending in .json) for a Hugging Face tokenizer.json, "
            "or \"world:PATH\" (or a PATH ending in .txt) for an RWKV World vocabulary, e.g. "
            "--tokenizer data/vocab/20B_tokenizer.json");
}

std::string decode_with_table(std::span<const int32_t> ids, const std::vector<std::string>& id_to_bytes,
                              const std::vector<bool>& id_defined, const std::string& origin) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    RWKV_CHECK(id >= 0 && static_cast<size_t>(id) < id_to_bytes.size() && id_defined[static_cast<size_t>(id)], origin,
               ": token id ", id, " at position ", i, " is not in the vocabulary (size ", id_to_bytes.size(), ")");
    out += id_to_bytes[static_cast<size_t>(id)];
  }
  return out;
}

}  // namespace rwkv::data
