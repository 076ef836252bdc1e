#include "trainer/zero_checkpoint.h"

#include <algorithm>

#include "core/error.h"

namespace rwkv::trainer {

namespace {

// A box [rows, cols] at local (row, col) of a tensor viewed as [R, K], in
// the tensor's own rank and in global coordinates.
void add_box(const NamedTensor& p, int tensor, int64_t shard_offset, int64_t row, int64_t col, int64_t rows,
             int64_t cols, std::vector<ShardRegion>& out) {
  const Shape& local = p.value.shape();
  const Shape offset = p.offset();
  const Shape global = p.global();
  // Vocabulary padding: rows of the local tensor past the global tensor's end.
  if (local.size() == 2) {
    const int64_t real_rows = std::max<int64_t>(0, std::min(local[0], global[0] - offset[0]));
    if (row >= real_rows) return;
    rows = std::min(rows, real_rows - row);
  }
  ShardRegion r;
  r.tensor = tensor;
  r.shard_offset = shard_offset;
  if (local.size() == 1) {
    r.global_offset = {offset[0] + col};
    r.shape = {cols};
  } else if (local.size() == 2) {
    r.global_offset = {offset[0] + row, offset[1] + col};
    r.shape = {rows, cols};
  } else {
    // [1, .., 1, K]: one row (time_mix vectors).
    r.global_offset = offset;
    r.global_offset.back() += col;
    r.shape = Shape(local.size(), 1);
    r.shape.back() = cols;
  }
  out.push_back(r);
}

}  // namespace

std::vector<ShardRegion> shard_regions(const parallel::ZeroPartition& partition, int rank, const ParameterStore& params) {
  std::vector<ShardRegion> out;
  const int64_t shard_begin = partition.shard_begin(rank);
  for (const parallel::FlatPiece& piece : partition.pieces(rank)) {
    const NamedTensor& p = params.entries()[static_cast<size_t>(piece.tensor)];
    const Shape& shape = p.value.shape();
    const int64_t K = shape.empty() ? 1 : shape.back();
    RWKV_CHECK(shape.size() <= 2 || p.value.numel() == K, "ZeRO checkpoint: '", p.name, "' has shape ",
               shape_str(shape), "; only vectors, matrices and [1, .., 1, K] tensors can be cut into boxes");
    int64_t pos = piece.tensor_offset;
    const int64_t end = piece.tensor_offset + piece.length;
    while (pos < end) {
      const int64_t row = pos / K, col = pos % K;
      const int64_t shard_offset = piece.flat_offset - shard_begin + (pos - piece.tensor_offset);
      if (col != 0 || end - pos < K) {  // part of one row
        const int64_t run = std::min(K - col, end - pos);
        add_box(p, piece.tensor, shard_offset, row, col, 1, run, out);
        pos += run;
      } else {  // whole rows
        const int64_t rows = (end - pos) / K;
        add_box(p, piece.tensor, shard_offset, row, 0, rows, K, out);
        pos += rows * K;
      }
    }
  }
  return out;
}

Tensor region_view(const Tensor& shard, const ShardRegion& region) {
  return shard.slice_rows(region.shard_offset, shape_numel(region.shape)).view(region.shape);
}

}  // namespace rwkv::trainer
