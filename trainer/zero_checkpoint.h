// ZeRO-1 shards in checkpoints: where each piece of a dp rank's flat AdamW
// shard lies in the global tensors, so every dp rank writes (and reads back)
// just its own moments and no rank ever holds the whole optimizer state.
//
// A piece of the shard is a contiguous run of one local tensor's elements
// (row-major). Viewed as [R, K] (K = the last dimension), a run is at most
// three boxes: the tail of its first row, whole rows, the head of its last
// row. Each box moves to global coordinates by the tensor's partition offset.
// Rows past the global tensor (vocabulary padding) are left out: their
// moments are zero and are not saved.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "parallel/data_parallel.h"
#include "trainer/parameters.h"

namespace rwkv::trainer {

struct ShardRegion {
  int tensor = 0;            // index into the parameter store
  int64_t shard_offset = 0;  // first element in the shard's flat buffer
  Shape global_offset;       // where the box starts in the global tensor
  Shape shape;               // the box (its numel elements are contiguous in the shard)
};

// One box of a run of tensor elements: it starts run_offset elements into
// the run and covers `shape` at global_offset of the global tensor.
struct RunBox {
  int64_t run_offset = 0;
  Shape global_offset;
  Shape shape;
};

// The boxes of elements [begin, begin + length) (row-major) of a local tensor
// of shape `local` that sits at `offset` of the global tensor `global`: at most
// three, rows past the global tensor (vocabulary padding) left out. Throws,
// naming `name`, for a shape that cannot be cut into boxes.
std::vector<RunBox> run_boxes(const std::string& name, const Shape& local, const Shape& global, const Shape& offset,
                              int64_t begin, int64_t length);

// The boxes of dp rank `rank`'s shard, in shard order. Throws for a tensor
// whose layout cannot be cut into boxes (a split leading dimension other than the first).
std::vector<ShardRegion> shard_regions(const parallel::ZeroPartition& partition, int rank, const ParameterStore& params);

// A view of the shard buffer [S] as the region's box (shares its storage).
Tensor region_view(const Tensor& shard, const ShardRegion& region);

}  // namespace rwkv::trainer
