#include "data/binidx_format.h"

#include <bit>

#include "core/error.h"

namespace rwkv::data {

static_assert(std::endian::native == std::endian::little, "binidx files are little-endian; so is this reader");

bool is_valid_token_dtype_code(uint8_t code) { return code >= 1 && code <= 8; }

size_t token_dtype_size(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::U8: case TokenDType::I8: return 1;
    case TokenDType::I16: case TokenDType::U16: return 2;
    case TokenDType::I32: case TokenDType::F32: return 4;
    case TokenDType::I64: case TokenDType::F64: return 8;
  }
  RWKV_FAIL("invalid binidx dtype code ", static_cast<int>(dtype));
}

const char* token_dtype_name(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::U8: return "uint8";
    case TokenDType::I8: return "int8";
    case TokenDType::I16: return "int16";
    case TokenDType::I32: return "int32";
    case TokenDType::I64: return "int64";
    case TokenDType::F64: return "float64";
    case TokenDType::F32: return "float32";
    case TokenDType::U16: return "uint16";
  }
  return "invalid";
}

TokenDType parse_token_dtype(const std::string& name) {
  for (uint8_t code = 1; code <= 8; ++code) {
    auto dtype = static_cast<TokenDType>(code);
    if (name == token_dtype_name(dtype)) return dtype;
  }
  RWKV_FAIL("unknown token dtype '", name,
            "'\n  ---> HINT: use one of uint8, int8, int16, int32, int64, float64, float32, uint16");
}

TokenDType token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::U16 : TokenDType::I32;
}

uint64_t idx_file_bytes(uint64_t sequences, uint64_t documents) {
  return kIdxHeaderBytes + sequences * (4 + 8) + documents * 8;
}

// (append rather than operator+: GCC 12 raises a false -Wrestrict on `string + "literal"`)
std::string bin_path(const std::string& prefix) { return std::string(prefix).append(".bin"); }
std::string idx_path(const std::string& prefix) { return std::string(prefix).append(".idx"); }

std::string strip_binidx_extension(const std::string& path) {
  auto ends_with = [&](const char* ext) { return path.size() > 4 && path.compare(path.size() - 4, 4, ext) == 0; };
  if (ends_with(".idx") || ends_with(".bin")) return path.substr(0, path.size() - 4);
  return path;
}

}  // namespace rwkv::data
