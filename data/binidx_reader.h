// Reads one binidx shard (see binidx_format.h) through memory maps: nothing is
// copied until tokens are asked for. Opening validates the whole index against
// both file lengths, so later reads cannot run off the end of a file.
#pragma once

#include <cstdint>
#include <string>

#include "data/binidx_format.h"
#include "core/file_io.h"

namespace rwkv::data {

class BinIdxReader {
 public:
  // prefix: the path without ".bin"/".idx" (a path ending in either is accepted too).
  explicit BinIdxReader(const std::string& prefix);

  const std::string& prefix() const { return prefix_; }
  const std::string& bin_path() const { return bin_.path(); }
  const std::string& idx_path() const { return idx_.path(); }

  TokenDType dtype() const { return dtype_; }
  size_t dtype_size() const { return dtype_size_; }
  uint64_t version() const { return kIdxVersion; }
  uint64_t num_sequences() const { return num_sequences_; }
  uint64_t num_doc_indices() const { return num_doc_indices_; }  // D: documents + 1 when Megatron-written
  uint64_t num_tokens() const { return num_tokens_; }              // sum of the sequence sizes
  uint64_t bin_bytes() const { return bin_.size(); }
  // True when the sequences tile .bin from byte 0 in index order (every file our
  // writer and Megatron's make): the shard is then one contiguous token stream.
  bool contiguous() const { return contiguous_; }

  int32_t sequence_length(uint64_t i) const;
  int64_t sequence_pointer(uint64_t i) const;  // byte offset in .bin
  int64_t doc_index(uint64_t j) const;

  // Converts `count` tokens starting at token `first` of .bin (in units of the
  // dtype) to int32. Throws, naming the .bin file and the token position, when
  // a value is negative, not an integer, or >= vocab_limit (0: no limit).
  void read_tokens(uint64_t first, uint64_t count, int32_t* out, int64_t vocab_limit = 0) const;

 private:
  void validate();
  std::string prefix_;
  MappedFile idx_;
  MappedFile bin_;
  TokenDType dtype_ = TokenDType::U16;
  size_t dtype_size_ = 2;
  uint64_t num_sequences_ = 0;
  uint64_t num_doc_indices_ = 0;
  uint64_t num_tokens_ = 0;
  bool contiguous_ = true;
  const uint8_t* sizes_ = nullptr;     // i32[N], inside idx_
  const uint8_t* pointers_ = nullptr;  // i64[N], inside idx_, unaligned
  const uint8_t* doc_idx_ = nullptr;   // i64[D], inside idx_, unaligned
};

// Converts raw tokens of any dtype to int32. Returns the index of the first
// value that is negative, not an integer, or >= vocab_limit (when > 0), or -1.
int64_t convert_tokens(TokenDType dtype, const uint8_t* src, uint64_t count, int32_t* dst, int64_t vocab_limit);

}  // namespace rwkv::data
