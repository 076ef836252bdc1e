// One interface for every tokenizer the pipeline uses:
//   HfBpeTokenizer   a Hugging Face tokenizer.json byte-level BPE (GPT-NeoX-20B,
//                    or one trained by `rwkv-data train-tokenizer`)
//   WorldTokenizer   the RWKV World vocabulary (rwkv_vocab_v20230424.txt)
//   ByteTokenizer    plain bytes: id = byte + 1, 0 = end of document
// encode() and decode() are const and safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // A short description, e.g. "hf-bpe:data/vocab/20B_tokenizer.json".
  virtual std::string name() const = 0;
  // Appends the ids of `text` to `ids`. Throws rwkv::Error for text the
  // tokenizer cannot take (e.g. invalid UTF-8), naming the byte offset.
  virtual void encode(std::string_view text, std::vector<int32_t>& ids) const = 0;
  // The text (bytes) of `ids`; throws for an id outside the vocabulary.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Ids are in [0, vocab_size()).
  virtual int64_t vocab_size() const = 0;
  // The id appended after every document (0 for NeoX-20B, World and bytes).
  virtual int32_t eod_id() const = 0;

  std::vector<int32_t> encode(std::string_view text) const {
    std::vector<int32_t> ids;
    encode(text, ids);
    return ids;
  }
};

// Loads a tokenizer from a spec:
//   "bytes"                      the byte tokenizer
//   "hf:PATH" or "PATH.json"     a Hugging Face tokenizer.json (byte-level BPE)
//   "world:PATH" or "PATH.txt"   an RWKV World vocabulary file
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

// Decoding by table, shared by the tokenizers whose ids map to byte strings:
// the concatenated bytes of ids; an id that is out of range or has no entry
// is an error naming origin and the position.
std::string decode_with_table(std::span<const int32_t> ids, const std::vector<std::string>& id_to_bytes,
                              const std::vector<bool>& id_defined, const std::string& origin);

}  // namespace rwkv::data
