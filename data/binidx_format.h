// The binidx format: Megatron-LM's indexed dataset, as GPT-NeoX and RWKV-LM
// read and write it. A shard is two files with a common prefix:
//
//   PREFIX.bin  the tokens, back to back, in the index's dtype (little-endian)
//   PREFIX.idx  little-endian, packed (no padding anywhere):
//     offset 0   magic "MMIDIDX\0\0"           9 bytes
//     offset 9   version = 1                   u64
//     offset 17  dtype code (table below)      u8
//     offset 18  sequence count N              u64
//     offset 26  document count D              u64
//     offset 34  sizes[N]                      i32, tokens per sequence
//     ...        pointers[N]                   i64, byte offset of each sequence in .bin
//     ...        doc_idx[D]                    i64, first sequence of each document, then N
//
// pointers start at byte 34 + 4N, which is 8-byte aligned only when N is even:
// they are read with memcpy, never through an i64*. Our writer stores one
// sequence per document, so doc_idx = [0, 1, ..., N] and D = N + 1, exactly as
// Megatron's writer does. Token 0 is end-of-document for the NeoX-20B and RWKV
// World vocabularies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rwkv::data {

// Megatron-core's DType codes (megatron/core/datasets/indexed_dataset.py).
enum class TokenDType : uint8_t { U8 = 1, I8 = 2, I16 = 3, I32 = 4, I64 = 5, F64 = 6, F32 = 7, U16 = 8 };

inline constexpr char kIdxMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
inline constexpr uint64_t kIdxVersion = 1;
inline constexpr size_t kIdxHeaderBytes = 9 + 8 + 1 + 8 + 8;  // 34

bool is_valid_token_dtype_code(uint8_t code);
size_t token_dtype_size(TokenDType dtype);
const char* token_dtype_name(TokenDType dtype);  // numpy's names: "uint16", "int32", ...
TokenDType parse_token_dtype(const std::string& name);  // inverse of token_dtype_name

// Megatron's rule: uint16 below 65500 tokens in the vocabulary, int32 above.
TokenDType token_dtype_for_vocab(int64_t vocab_size);

// Size of a well-formed .idx with N sequences and D documents.
uint64_t idx_file_bytes(uint64_t sequences, uint64_t documents);

std::string bin_path(const std::string& prefix);
std::string idx_path(const std::string& prefix);
// "data/x.idx" or "data/x.bin" -> "data/x"; anything else is returned unchanged.
std::string strip_binidx_extension(const std::string& path);

// Reads and writes little-endian integers at any alignment (memcpy; this code
// targets little-endian hosts, checked at compile time in binidx_format.cpp).
template <typename T>
inline T load_unaligned(const uint8_t* p) {
  T value;
  __builtin_memcpy(&value, p, sizeof(T));
  return value;
}
template <typename T>
inline void store_unaligned(uint8_t* p, T value) {
  __builtin_memcpy(p, &value, sizeof(T));
}

}  // namespace rwkv::data
