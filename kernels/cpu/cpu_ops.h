// The CPU backend: OpenBLAS GEMMs and OpenMP loops, templated on float and
// double so the tests can run every op in double precision.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/adamw.h"
#include "kernels/dropout_math.h"

namespace rwkv::cpu {
#include "kernels/backend_ops.inc"
}  // namespace rwkv::cpu
