// Final pass of the deterministic column reductions (kernels/cuda/launch_geometry.h,
// ColumnReducePlan): adds up per-chunk partial sums in chunk order and
// accumulates them into up to three [C] outputs.
#pragma once

#include <cstdint>

namespace rwkv::cuda {

struct ColumnOutputs {
  float* out[3] = {nullptr, nullptr, nullptr};  // each [C], accumulated (+=)
  int count = 0;                                // how many of out[] are used
};

// partials: [outputs.count, chunks, C] fp32 on the device (stream-ordered on the
// default stream). out[j][c] += sum_{k < chunks} partials[j, k, c], k ascending.
void finalize_column_sums(const float* partials, int64_t chunks, int64_t C, const ColumnOutputs& outputs);

}  // namespace rwkv::cuda
