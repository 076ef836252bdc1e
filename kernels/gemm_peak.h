// Measures this machine's matrix-multiply rate: the denominator of MFU.
// Square f32 GEMMs (bf16 on CUDA) of a size that reaches the library's peak,
// repeated for about `seconds`; the best single run counts.
#pragma once

#include "core/device.h"

namespace rwkv {

double measure_gemm_peak_gflops(Device device, double seconds, int64_t size = 2048);

}  // namespace rwkv
