#include "parallel/data_parallel.h"

#include <algorithm>

#include "kernels/reduce.h"
#include "parallel/comm_volume.h"

namespace rwkv::parallel {

namespace {

int64_t elems_in(int64_t bytes, DType dtype) {
  return std::max<int64_t>(1, bytes / static_cast<int64_t>(dtype_size(dtype)));
}

// The factor of the mean, one rounding of 1/dp to float, multiplied in the
// tensor's dtype (kernels/reduce.h scale_): the same on every path.
float mean_factor(int dp) { return 1.0f / static_cast<float>(dp); }

}  // namespace

// ---- plain data parallelism -------------------------------------------------

GradAllReducer::GradAllReducer(const ParameterStore& grads, Communicator& dp, int64_t bucket_bytes)
    : layout_(grads), dp_(dp) {
  RWKV_CHECK(bucket_bytes > 0, "GradAllReducer: bucket_bytes must be positive, got ", bucket_bytes);
  bucket_elems_ = std::min(elems_in(bucket_bytes, layout_.dtype()), std::max<int64_t>(1, layout_.numel()));
  staging_ = Tensor::empty({bucket_elems_}, layout_.dtype(), layout_.device());
}

void GradAllReducer::all_reduce_mean(ParameterStore& grads) {
  layout_.expect_matches("GradAllReducer::all_reduce_mean", grads);
  if (dp_.size() == 1) return;  // the mean of one replica is itself
  const float factor = mean_factor(dp_.size());
  for (int64_t begin = 0; begin < layout_.numel(); begin += bucket_elems_) {
    const int64_t end = std::min(layout_.numel(), begin + bucket_elems_);
    Tensor bucket = flat_slice(staging_, 0, end - begin);
    pack(grads, layout_, begin, end, bucket);
    dp_.all_reduce_sum(bucket);
    scale_(bucket, factor);
    unpack(bucket, layout_, begin, end, grads);
  }
}

void GradAllReducer::begin_overlap(ParameterStore& grads) {
  layout_.expect_matches("GradAllReducer::begin_overlap", grads);
  RWKV_CHECK(!overlapping_, "GradAllReducer::begin_overlap: the previous step's finish_overlap is missing");
  overlapping_ = true;
  started_early_ = 0;
  next_unstarted_ = buckets();
  // In place only when the store is one buffer in layout order.
  const Tensor& flat = grads.flat();
  flat_ = flat.defined() && flat.numel() == layout_.numel() ? flat : Tensor();
}

void GradAllReducer::start_buckets_from(int64_t flat_offset) {
  if (dp_.size() == 1 || !flat_.defined()) return;
  while (next_unstarted_ > 0 && static_cast<int64_t>(next_unstarted_ - 1) * bucket_elems_ >= flat_offset) {
    --next_unstarted_;
    const int64_t begin = static_cast<int64_t>(next_unstarted_) * bucket_elems_;
    const int64_t end = std::min(layout_.numel(), begin + bucket_elems_);
    Tensor bucket = flat_slice(flat_, begin, end - begin);
    dp_.all_reduce_sum_start(bucket);
  }
}

void GradAllReducer::grads_final_from(int tensor) {
  RWKV_CHECK(overlapping_, "GradAllReducer::grads_final_from outside begin_overlap/finish_overlap");
  RWKV_CHECK(tensor >= 0 && tensor <= layout_.tensors(), "GradAllReducer::grads_final_from: tensor ", tensor,
             " of ", layout_.tensors());
  const int before = next_unstarted_;
  start_buckets_from(tensor == layout_.tensors() ? layout_.numel() : layout_.offset(tensor));
  started_early_ += before - next_unstarted_;
}

void GradAllReducer::finish_overlap(ParameterStore& grads) {
  RWKV_CHECK(overlapping_, "GradAllReducer::finish_overlap without begin_overlap");
  overlapping_ = false;
  if (!flat_.defined()) {
    all_reduce_mean(grads);
    return;
  }
  if (dp_.size() == 1) return;
  start_buckets_from(0);
  dp_.wait_started();
  // One multiplication by (float)(1/dp) per element, as all_reduce_mean.
  scale_(flat_, mean_factor(dp_.size()));
  flat_ = Tensor();
}

uint64_t GradAllReducer::bytes_sent_per_call() const {
  if (dp_.size() == 1) return 0;
  uint64_t total = 0;
  for (int64_t begin = 0; begin < layout_.numel(); begin += bucket_elems_) {
    const int64_t len = std::min(layout_.numel(), begin + bucket_elems_) - begin;
    total += all_reduce_bytes_sent(len, static_cast<int64_t>(dtype_size(layout_.dtype())), dp_.size(), dp_.rank());
  }
  return total;
}

// ---- ZeRO-1 -------------------------------------------------------------------

ZeroPartition::ZeroPartition(const FlatLayout& layout, int dp, int64_t align) : dp_(dp), numel_(layout.numel()) {
  RWKV_CHECK(dp >= 1, "ZeroPartition: dp must be at least 1, got ", dp);
  RWKV_CHECK(align >= 1, "ZeroPartition: align must be at least 1 element, got ", align);
  // S = ceil(N / (dp * align)) * align: every shard the same size, a multiple
  // of align; at least one aligned block so an empty store still partitions.
  const int64_t unit = int64_t{dp} * align;
  shard_ = std::max<int64_t>(1, (numel_ + unit - 1) / unit) * align;
  for (int r = 0; r < dp; ++r) pieces_.push_back(layout.pieces(shard_begin(r), shard_begin(r) + shard_));
}

ZeroOneSync::ZeroOneSync(const ParameterStore& params, Communicator& dp, int64_t bucket_bytes, int64_t align)
    : layout_(params), partition_(layout_, dp.size(), align), dp_(dp) {
  RWKV_CHECK(bucket_bytes > 0, "ZeroOneSync: bucket_bytes must be positive, got ", bucket_bytes);
  // One bucket = dp rows of rows_elems_: bucket_bytes covers all of them.
  rows_elems_ =
      std::min(std::max<int64_t>(1, elems_in(bucket_bytes, layout_.dtype()) / dp.size()), partition_.shard_numel());
  staging_ = Tensor::empty({int64_t{dp.size()} * rows_elems_}, layout_.dtype(), layout_.device());
}

void ZeroOneSync::reduce_scatter_mean(const ParameterStore& grads, Tensor& grad_shard) {
  const char* op = "ZeroOneSync::reduce_scatter_mean";
  layout_.expect_matches(op, grads);
  const int64_t S = partition_.shard_numel();
  const int n = dp_.size();
  expect_shape(op, "grad_shard", grad_shard, {S}, "[shard_numel]");
  expect_dtype(op, "grad_shard", grad_shard, layout_.dtype());
  expect_device(op, "grad_shard", grad_shard, layout_.device());
  for (int64_t s0 = 0; s0 < S; s0 += rows_elems_) {
    const int64_t len = std::min(S, s0 + rows_elems_) - s0;
    // Row d of the bucket: rank d's shard, elements [s0, s0 + len).
    Tensor rows = flat_slice(staging_, 0, int64_t{n} * len);
    for (int d = 0; d < n; ++d) {
      const int64_t begin = partition_.shard_begin(d) + s0;
      pack(grads, layout_, begin, begin + len, flat_slice(rows, int64_t{d} * len, len));
    }
    Tensor out = flat_slice(grad_shard, s0, len);
    dp_.reduce_scatter_sum(rows, out);
  }
  if (n > 1) scale_(grad_shard, mean_factor(n));
}

void ZeroOneSync::all_gather_params(ParameterStore& params) {
  const char* op = "ZeroOneSync::all_gather_params";
  layout_.expect_matches(op, params);
  const int64_t S = partition_.shard_numel();
  const int n = dp_.size(), me = dp_.rank();
  if (n == 1) return;
  for (int64_t s0 = 0; s0 < S; s0 += rows_elems_) {
    const int64_t len = std::min(S, s0 + rows_elems_) - s0;
    Tensor rows = flat_slice(staging_, 0, int64_t{n} * len);
    Tensor mine = flat_slice(rows, int64_t{me} * len, len);  // in place: my row is the input
    const int64_t my_begin = partition_.shard_begin(me) + s0;
    pack(params, layout_, my_begin, my_begin + len, mine);
    dp_.all_gather(mine, rows);
    for (int d = 0; d < n; ++d) {
      if (d == me) continue;  // already there
      const int64_t begin = partition_.shard_begin(d) + s0;
      unpack(flat_slice(rows, int64_t{d} * len, len), layout_, begin, begin + len, params);
    }
  }
}

uint64_t ZeroOneSync::reduce_scatter_bytes_per_call() const {
  // Per bucket (dp-1) len e; over the buckets the lens add up to S.
  return reduce_scatter_bytes_sent(partition_.shard_numel(), static_cast<int64_t>(dtype_size(layout_.dtype())),
                                   dp_.size());
}

uint64_t ZeroOneSync::all_gather_bytes_per_call() const {
  return all_gather_bytes_sent(partition_.shard_numel(), static_cast<int64_t>(dtype_size(layout_.dtype())), dp_.size());
}

}  // namespace rwkv::parallel
