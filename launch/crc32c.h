// CRC-32C (Castagnoli), the checksum of TFRecord framing, and its "masked"
// form. TFRecord masks the CRCs it stores because a CRC computed over data
// that itself contains CRCs is weak; the mask rotates and offsets it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rwkv::launch {

// Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF
// (crc32c("123456789") = 0xE3069283).
uint32_t crc32c(const void* data, size_t size);
inline uint32_t crc32c(std::string_view bytes) { return crc32c(bytes.data(), bytes.size()); }

// ((crc >> 15) | (crc << 17)) + 0xa282ead8, as TensorFlow's record writer.
inline uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace rwkv::launch
