// Dropout of the residual stream, in place (maths and mask in
// kernels/dropout_math.h). The same call is the forward (x -> x m / (1 - p))
// and the backward (dy -> dy m / (1 - p)): the mask is recomputed from the key.
#pragma once

#include "core/tensor.h"
#include "kernels/dropout_math.h"

namespace rwkv {

// x: [B, T, C], float; key.p in [0, 1); p = 0 leaves x untouched.
void dropout_(Tensor& x, const DropoutKey& key);

}  // namespace rwkv
