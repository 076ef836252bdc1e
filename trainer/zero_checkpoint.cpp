#include "trainer/zero_checkpoint.h"

#include <algorithm>

#include "core/error.h"

namespace rwkv::trainer {

namespace {

// The box [rows, cols] at local (row, col) of a tensor viewed as [R, K], in
// the tensor's own rank and in global coordinates; false when it lies wholly
// in the vocabulary padding.
bool global_box(const Shape& local, const Shape& global, const Shape& offset, int64_t row, int64_t col, int64_t rows,
                int64_t cols, RunBox& box) {
  // Vocabulary padding: rows of the local tensor past the global tensor's end.
  if (local.size() == 2) {
    const int64_t real_rows = std::max<int64_t>(0, std::min(local[0], global[0] - offset[0]));
    if (row >= real_rows) return false;
    rows = std::min(rows, real_rows - row);
  }
  if (local.size() == 1) {
    box.global_offset = {offset[0] + col};
    box.shape = {cols};
  } else if (local.size() == 2) {
    box.global_offset = {offset[0] + row, offset[1] + col};
    box.shape = {rows, cols};
  } else {
    // [1, .., 1, K]: one row (time_mix vectors).
    box.global_offset = offset;
    box.global_offset.back() += col;
    box.shape = Shape(local.size(), 1);
    box.shape.back() = cols;
  }
  return true;
}

}  // namespace

std::vector<RunBox> run_boxes(const std::string& name, const Shape& local, const Shape& global, const Shape& offset,
                              int64_t begin, int64_t length) {
  const int64_t K = local.empty() ? 1 : local.back();
  RWKV_CHECK(local.size() <= 2 || shape_numel(local) == K, "ZeRO checkpoint: '", name, "' has shape ",
             shape_str(local), "; only vectors, matrices and [1, .., 1, K] tensors can be cut into boxes");
  std::vector<RunBox> out;
  int64_t pos = begin;
  const int64_t end = begin + length;
  while (pos < end) {
    const int64_t row = pos / K, col = pos % K;
    // Part of one row, or whole rows.
    const bool partial = col != 0 || end - pos < K;
    const int64_t rows = partial ? 1 : (end - pos) / K;
    const int64_t cols = partial ? std::min(K - col, end - pos) : K;
    RunBox box;
    box.run_offset = pos - begin;
    if (global_box(local, global, offset, row, col, rows, cols, box)) out.push_back(box);
    pos += rows * cols;
  }
  return out;
}

std::vector<ShardRegion> shard_regions(const parallel::ZeroPartition& partition, int rank, const ParameterStore& params) {
  std::vector<ShardRegion> out;
  for (const parallel::ShardPiece& piece : partition.pieces(rank)) {
    const NamedTensor& p = params.entries()[static_cast<size_t>(piece.tensor)];
    for (const RunBox& box :
         run_boxes(p.name, p.value.shape(), p.global(), p.offset(), piece.tensor_offset, piece.length))
      out.push_back({piece.tensor, piece.shard_offset + box.run_offset, box.global_offset, box.shape});
  }
  return out;
}

Tensor region_view(const Tensor& shard, const ShardRegion& region) {
  return shard.slice_rows(region.shard_offset, shape_numel(region.shape)).view(region.shape);
}

}  // namespace rwkv::trainer
