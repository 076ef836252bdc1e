// The CUDA backend: cuBLAS GEMMs with fp32 accumulation, custom kernels with
// bf16 or f32 storage and fp32 maths. Declared for every build; defined only
// when the CUDA backend is built (the dispatchers never call it otherwise).
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/adamw.h"
#include "kernels/dropout_math.h"

namespace rwkv::cuda {
#include "kernels/backend_ops.inc"
}  // namespace rwkv::cuda
