#include "data/binidx_writer.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace rwkv::data {

namespace {

// Stores `value` as the shard's dtype; false when it does not fit.
template <typename Out, typename In>
bool store_as(uint8_t* dst, In value) {
  if constexpr (std::is_floating_point_v<Out>) {
    store_unaligned<Out>(dst, static_cast<Out>(value));
    return static_cast<In>(static_cast<Out>(value)) == value;
  } else {
    if constexpr (std::is_floating_point_v<In>) {
      if (std::floor(value) != value) return false;
    }
    if (value < static_cast<In>(std::numeric_limits<Out>::min()) ||
        value > static_cast<In>(std::numeric_limits<Out>::max())) {
      return false;
    }
    store_unaligned<Out>(dst, static_cast<Out>(value));
    return true;
  }
}

template <typename In>
bool store_token(TokenDType dtype, uint8_t* dst, In value) {
  switch (dtype) {
    case TokenDType::U8: return store_as<uint8_t>(dst, value);
    case TokenDType::I8: return store_as<int8_t>(dst, value);
    case TokenDType::I16: return store_as<int16_t>(dst, value);
    case TokenDType::I32: return store_as<int32_t>(dst, value);
    case TokenDType::I64: return store_as<int64_t>(dst, value);
    case TokenDType::F64: return store_as<double>(dst, value);
    case TokenDType::F32: return store_as<float>(dst, value);
    case TokenDType::U16: return store_as<uint16_t>(dst, value);
  }
  return false;
}

}  // namespace

std::vector<uint8_t> encode_idx_header(TokenDType dtype, uint64_t sequences, uint64_t documents) {
  std::vector<uint8_t> header(kIdxHeaderBytes);
  std::memcpy(header.data(), kIdxMagic, sizeof kIdxMagic);
  store_unaligned<uint64_t>(header.data() + 9, kIdxVersion);
  header[17] = static_cast<uint8_t>(dtype);
  store_unaligned<uint64_t>(header.data() + 18, sequences);
  store_unaligned<uint64_t>(header.data() + 26, documents);
  return header;
}

BinIdxWriter::BinIdxWriter(std::string prefix, TokenDType dtype) : prefix_(std::move(prefix)), dtype_(dtype) {
  RWKV_CHECK(is_valid_token_dtype_code(static_cast<uint8_t>(dtype)), "invalid binidx dtype code ",
             static_cast<int>(dtype));
  bin_ = std::make_unique<AtomicFileWriter>(bin_path(prefix_));
}

template <typename T>
void BinIdxWriter::add_typed(std::span<const T> tokens) {
  RWKV_CHECK(!finished_, prefix_, ": add_document after finish()");
  RWKV_CHECK(tokens.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), prefix_, ": a document of ",
             tokens.size(), " tokens exceeds the format's limit of 2^31-1 tokens a sequence",
             "\n  ---> HINT: split the document before preparing it");
  const size_t item = token_dtype_size(dtype_);
  scratch_.resize(tokens.size() * item);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!store_token(dtype_, scratch_.data() + i * item, tokens[i])) {
      RWKV_FAIL(prefix_, ": document ", sizes_.size(), " token ", i, " has id ", tokens[i],
                ", which does not fit the shard dtype ", token_dtype_name(dtype_),
                "\n  ---> HINT: the vocabulary is larger than the dtype allows; use int32 (vocabularies of 65500 or more)");
    }
  }
  bin_->write(scratch_.data(), scratch_.size());
  sizes_.push_back(static_cast<int32_t>(tokens.size()));
  num_tokens_ += tokens.size();
}

void BinIdxWriter::add_document(std::span<const int32_t> tokens) { add_typed(tokens); }
void BinIdxWriter::add_document(std::span<const int64_t> tokens) { add_typed(tokens); }
void BinIdxWriter::add_document(std::span<const double> tokens) { add_typed(tokens); }

void BinIdxWriter::finish() {
  if (finished_) return;
  finished_ = true;
  bin_->finish();
  const uint64_t n = sizes_.size();
  idx_ = std::make_unique<AtomicFileWriter>(idx_path(prefix_));
  std::vector<uint8_t> header = encode_idx_header(dtype_, n, n + 1);
  idx_->write(header.data(), header.size());
  idx_->write(sizes_.data(), n * sizeof(int32_t));
  std::vector<int64_t> values(n);
  int64_t pointer = 0;
  const int64_t item = static_cast<int64_t>(token_dtype_size(dtype_));
  for (uint64_t i = 0; i < n; ++i) {
    values[i] = pointer;
    pointer += static_cast<int64_t>(sizes_[i]) * item;
  }
  idx_->write(values.data(), n * sizeof(int64_t));
  // doc_idx = [0, 1, ..., n]: every document is one sequence (Megatron's layout).
  values.resize(n + 1);
  for (uint64_t i = 0; i <= n; ++i) values[i] = static_cast<int64_t>(i);
  idx_->write(values.data(), (n + 1) * sizeof(int64_t));
  idx_->finish();
}

void BinIdxWriter::commit() {
  finish();
  bin_->commit();
  idx_->commit();
}

}  // namespace rwkv::data
