// Copying between two rectangular pieces of one global tensor.
//
// A checkpoint stores each tensor as slices (a box: offset + shape in the
// global tensor, row-major data); a loader wants another box (its own
// partition of the tensor, in another layout). The elements both boxes hold
// are their intersection, per dimension d:
//     lo[d] = max(src_off[d], dst_off[d]),  hi[d] = min(src_off[d] + src_shape[d], dst_off[d] + dst_shape[d])
// empty when any lo[d] >= hi[d]. The intersection is copied one innermost run
// (hi[last] - lo[last] elements) at a time, so a loader reads only the bytes
// it keeps, never the whole global tensor.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace rwkv::checkpoint {

struct Box {
  Shape offset;  // where the box starts in the global tensor
  Shape shape;   // its extent; its data is row-major and contiguous
};

// Elements in the intersection of a and b (0 when they do not overlap).
int64_t overlap_numel(const Box& a, const Box& b);

// Copies the intersection of src and dst from src_data into dst_data
// (element size elem bytes); returns the elements copied.
int64_t copy_overlap(const uint8_t* src_data, const Box& src, uint8_t* dst_data, const Box& dst, size_t elem);

}  // namespace rwkv::checkpoint
