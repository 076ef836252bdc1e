// Streams documents into one binidx shard (format in binidx_format.h). Tokens
// go to PREFIX.bin as they arrive; sizes and pointers stay in memory (12 bytes
// a document) until finish() writes PREFIX.idx. Both files are written under
// temporary names and appear under their final names only at commit(), .bin
// first and .idx last, so an .idx on disk always describes a complete .bin.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/binidx_format.h"
#include "core/file_io.h"

namespace rwkv::data {

class BinIdxWriter {
 public:
  BinIdxWriter(std::string prefix, TokenDType dtype);

  // One document = one sequence. Throws when a token does not fit the dtype.
  void add_document(std::span<const int32_t> tokens);
  void add_document(std::span<const int64_t> tokens);
  void add_document(std::span<const double> tokens);  // for the float dtypes

  uint64_t num_documents() const { return sizes_.size(); }
  uint64_t num_tokens() const { return num_tokens_; }
  uint64_t bin_bytes() const { return bin_->bytes_written(); }
  const std::string& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }

  void finish();  // writes the index; both files fsynced, still under temporary names
  void commit();  // finish() if needed, then rename .bin, then .idx

 private:
  template <typename T>
  void add_typed(std::span<const T> tokens);
  std::string prefix_;
  TokenDType dtype_;
  std::unique_ptr<AtomicFileWriter> bin_;
  std::unique_ptr<AtomicFileWriter> idx_;
  std::vector<int32_t> sizes_;
  std::vector<uint8_t> scratch_;
  uint64_t num_tokens_ = 0;
  bool finished_ = false;
};

// The .idx header as bytes (exposed for tests that check it byte for byte).
std::vector<uint8_t> encode_idx_header(TokenDType dtype, uint64_t sequences, uint64_t documents);

}  // namespace rwkv::data
