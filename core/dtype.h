// Element types a tensor can hold. f32 is the working type of the CPU backend,
// f64 exists so the tests can compute references in double precision, bf16 is
// the GPU storage type, and the integer types carry token ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/bf16.h"

namespace rwkv {

enum class DType : uint8_t { F32, F64, BF16, I32, I64, U16 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// Maps a C++ type to its DType, so data<T>() can check what it is asked for.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<bf16> { static constexpr DType value = DType::BF16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::I64; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::U16; };

}  // namespace rwkv
