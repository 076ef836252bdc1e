#include "data/binidx_reader.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace rwkv::data {

namespace {

// Without a vocabulary, any id that fits int32 is accepted.
constexpr int64_t kNoVocabLimit = int64_t{1} << 31;

std::string printable_bytes(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
      out += static_cast<char>(p[i]);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", p[i]);
      out += hex;
    }
  }
  return out;
}

template <typename T>
int64_t convert_typed(const uint8_t* src, uint64_t count, int32_t* dst, int64_t vocab_limit) {
  const int64_t limit = vocab_limit > 0 ? vocab_limit : kNoVocabLimit;
  for (uint64_t i = 0; i < count; ++i) {
    T raw = load_unaligned<T>(src + i * sizeof(T));
    if constexpr (std::is_floating_point_v<T>) {
      if (!(raw >= 0) || raw >= static_cast<T>(limit) || std::floor(raw) != raw) return static_cast<int64_t>(i);
    } else if constexpr (std::is_signed_v<T>) {
      if (raw < 0 || static_cast<int64_t>(raw) >= limit) return static_cast<int64_t>(i);
    } else {
      if (static_cast<int64_t>(raw) >= limit) return static_cast<int64_t>(i);
    }
    dst[i] = static_cast<int32_t>(raw);
  }
  return -1;
}

}  // namespace

int64_t convert_tokens(TokenDType dtype, const uint8_t* src, uint64_t count, int32_t* dst, int64_t vocab_limit) {
  switch (dtype) {
    case TokenDType::U8: return convert_typed<uint8_t>(src, count, dst, vocab_limit);
    case TokenDType::I8: return convert_typed<int8_t>(src, count, dst, vocab_limit);
    case TokenDType::I16: return convert_typed<int16_t>(src, count, dst, vocab_limit);
    case TokenDType::I32: return convert_typed<int32_t>(src, count, dst, vocab_limit);
    case TokenDType::I64: return convert_typed<int64_t>(src, count, dst, vocab_limit);
    case TokenDType::F64: return convert_typed<double>(src, count, dst, vocab_limit);
    case TokenDType::F32: return convert_typed<float>(src, count, dst, vocab_limit);
    case TokenDType::U16: return convert_typed<uint16_t>(src, count, dst, vocab_limit);
  }
  RWKV_FAIL("invalid binidx dtype code ", static_cast<int>(dtype));
}

BinIdxReader::BinIdxReader(const std::string& prefix)
    : prefix_(strip_binidx_extension(prefix)),
      idx_(data::idx_path(prefix_)),
      bin_(data::bin_path(prefix_)) {
  validate();
}

void BinIdxReader::validate() {
  const std::string& path = idx_.path();
  const uint64_t idx_size = idx_.size();
  const uint8_t* p = idx_.data();
  const char* hint_regenerate = "\n  ---> HINT: the shard is damaged or incomplete; run `rwkv-data prepare` again";

  RWKV_CHECK(idx_size >= kIdxHeaderBytes, path, ": truncated header: the file has ", idx_size,
             " bytes, a binidx header needs ", kIdxHeaderBytes, hint_regenerate);
  RWKV_CHECK(std::memcmp(p, kIdxMagic, sizeof kIdxMagic) == 0, path, ": bad magic at byte 0: expected \"MMIDIDX\\x00\\x00\", found \"",
             printable_bytes(p, sizeof kIdxMagic),
             "\"\n  ---> HINT: this is not a Megatron binidx index; pass the prefix of a shard written by `rwkv-data prepare`, "
             "Megatron-LM or GPT-NeoX");
  uint64_t version = load_unaligned<uint64_t>(p + 9);
  RWKV_CHECK(version == kIdxVersion, path, ": unsupported version ", version, " at byte 9: expected ", kIdxVersion,
             "\n  ---> HINT: only version-1 (Megatron MMIDIDX) indexes exist; the file is probably damaged");
  uint8_t code = p[17];
  RWKV_CHECK(is_valid_token_dtype_code(code), path, ": invalid dtype code ", static_cast<int>(code),
             " at byte 17: expected 1..8 (1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16)",
             hint_regenerate);
  dtype_ = static_cast<TokenDType>(code);
  dtype_size_ = token_dtype_size(dtype_);
  num_sequences_ = load_unaligned<uint64_t>(p + 18);
  num_doc_indices_ = load_unaligned<uint64_t>(p + 26);

  // Compare the declared counts with the file length before touching the
  // arrays (guarding the arithmetic against absurd counts).
  const uint64_t body = idx_size - kIdxHeaderBytes;
  bool fits = num_sequences_ <= body / 12 && num_doc_indices_ <= body / 8 &&
              idx_file_bytes(num_sequences_, num_doc_indices_) <= idx_size;
  RWKV_CHECK(fits, path, ": the header declares ", num_sequences_, " sequences and ", num_doc_indices_,
             " document indices (", idx_file_bytes(num_sequences_ % (1ull << 40), num_doc_indices_ % (1ull << 40)),
             " bytes of index) but the file has only ", idx_size, " bytes", hint_regenerate);
  RWKV_CHECK(idx_file_bytes(num_sequences_, num_doc_indices_) == idx_size, path, ": the header declares ",
             num_sequences_, " sequences and ", num_doc_indices_, " document indices, which take ",
             idx_file_bytes(num_sequences_, num_doc_indices_), " bytes, but the file has ", idx_size,
             " bytes (trailing data)", hint_regenerate);
  sizes_ = p + kIdxHeaderBytes;
  pointers_ = sizes_ + 4 * num_sequences_;
  doc_idx_ = pointers_ + 8 * num_sequences_;

  const uint64_t bin_size = bin_.size();
  uint64_t expected_pointer = 0;
  num_tokens_ = 0;
  contiguous_ = true;
  for (uint64_t i = 0; i < num_sequences_; ++i) {
    int32_t size = sequence_length(i);
    int64_t pointer = sequence_pointer(i);
    RWKV_CHECK(size >= 0, path, ": sequence ", i, " has negative size ", size, hint_regenerate);
    RWKV_CHECK(pointer >= 0 && static_cast<uint64_t>(pointer) % dtype_size_ == 0, path, ": sequence ", i,
               " has pointer ", pointer, ", expected a non-negative multiple of the ", dtype_size_, "-byte ",
               token_dtype_name(dtype_), hint_regenerate);
    uint64_t end = static_cast<uint64_t>(pointer) + static_cast<uint64_t>(size) * dtype_size_;
    RWKV_CHECK(end <= bin_size, bin_.path(), ": sequence ", i, " of ", num_sequences_, " spans bytes [", pointer, ", ",
               end, ") but the file has only ", bin_size,
               " bytes\n  ---> HINT: the .bin is truncated (an interrupted copy?) or belongs to another .idx");
    if (static_cast<uint64_t>(pointer) != expected_pointer) contiguous_ = false;
    expected_pointer = end;
    num_tokens_ += static_cast<uint64_t>(size);
  }
  int64_t previous = 0;
  for (uint64_t j = 0; j < num_doc_indices_; ++j) {
    int64_t value = doc_index(j);
    RWKV_CHECK(value >= previous && static_cast<uint64_t>(value) <= num_sequences_, path, ": doc_idx[", j, "] = ",
               value, ", expected a non-decreasing sequence index in [", previous, ", ", num_sequences_, "]",
               hint_regenerate);
    previous = value;
  }
}

int32_t BinIdxReader::sequence_length(uint64_t i) const { return load_unaligned<int32_t>(sizes_ + 4 * i); }
int64_t BinIdxReader::sequence_pointer(uint64_t i) const { return load_unaligned<int64_t>(pointers_ + 8 * i); }
int64_t BinIdxReader::doc_index(uint64_t j) const { return load_unaligned<int64_t>(doc_idx_ + 8 * j); }

void BinIdxReader::read_tokens(uint64_t first, uint64_t count, int32_t* out, int64_t vocab_limit) const {
  RWKV_CHECK(first + count <= bin_.size() / dtype_size_, bin_.path(), ": read of tokens [", first, ", ", first + count,
             ") beyond the ", bin_.size() / dtype_size_, " tokens of the file");
  int64_t bad = convert_tokens(dtype_, bin_.data() + first * dtype_size_, count, out, vocab_limit);
  if (bad >= 0) {
    uint64_t position = first + static_cast<uint64_t>(bad);
    const uint8_t* raw = bin_.data() + position * dtype_size_;
    std::string value;
    switch (dtype_) {
      case TokenDType::F64: value = std::to_string(load_unaligned<double>(raw)); break;
      case TokenDType::F32: value = std::to_string(load_unaligned<float>(raw)); break;
      case TokenDType::U8: value = std::to_string(*raw); break;
      case TokenDType::I8: value = std::to_string(static_cast<int8_t>(*raw)); break;
      case TokenDType::I16: value = std::to_string(load_unaligned<int16_t>(raw)); break;
      case TokenDType::U16: value = std::to_string(load_unaligned<uint16_t>(raw)); break;
      case TokenDType::I32: value = std::to_string(load_unaligned<int32_t>(raw)); break;
      case TokenDType::I64: value = std::to_string(load_unaligned<int64_t>(raw)); break;
    }
    RWKV_FAIL(bin_.path(), ": token ", position, " (byte ", position * dtype_size_, ") is ", value,
              ", expected an integer token id in [0, ", vocab_limit > 0 ? vocab_limit : kNoVocabLimit,
              ")\n  ---> HINT: the shard was made with a larger vocabulary than the model's (check vocab_size and the "
              "tokenizer), or it is damaged");
  }
}

}  // namespace rwkv::data
