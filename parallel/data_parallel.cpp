#include "parallel/data_parallel.h"

#include <algorithm>

#include "kernels/reduce.h"
#include "parallel/comm_volume.h"

namespace rwkv::parallel {

namespace {

int64_t elems_in(int64_t bytes, DType dtype) {
  return std::max<int64_t>(1, bytes / static_cast<int64_t>(dtype_size(dtype)));
}

}  // namespace

// ---- plain data parallelism -------------------------------------------------

GradAllReducer::GradAllReducer(const ParameterStore& grads, Communicator& dp, int64_t bucket_bytes,
                               std::optional<DType> wire)
    : BucketedReduction("GradAllReducer", grads, dp, wire),
      bucket_elems_(std::min(bucket_elems_for(bucket_bytes, layout_.dtype()), std::max<int64_t>(1, layout_.numel()))),
      staging_(Tensor::empty({bucket_elems_}, layout_.dtype(), layout_.device())) {}

void GradAllReducer::all_reduce_mean(ParameterStore& grads) {
  layout_.expect_matches("GradAllReducer::all_reduce_mean", grads);
  if (dp_.size() == 1) return;  // the mean of one replica is itself
  const float factor = mean_factor(dp_.size());
  for (int64_t begin = 0; begin < layout_.numel(); begin += bucket_elems_) {
    const int64_t end = std::min(layout_.numel(), begin + bucket_elems_);
    Tensor bucket = flat_slice(staging_, 0, end - begin);
    pack(grads, layout_, begin, end, bucket);
    if (wire_rounds()) {
      // Through a wire buffer, complete before the next bucket packs.
      Tensor wire = flat_slice(idle_wire_buffer(bucket_elems_), 0, end - begin);
      cast(bucket, wire);
      dp_.all_reduce_sum(wire);
      cast(wire, bucket);
    } else {
      dp_.all_reduce_sum(bucket);
    }
    scale_(bucket, factor);
    unpack(bucket, layout_, begin, end, grads);
  }
}

void GradAllReducer::start_bucket(int bucket) {
  const int64_t begin = bucket_begin(bucket);
  const int64_t end = std::min(layout_.numel(), begin + bucket_elems_);
  Tensor in_place = flat_slice(flat_, begin, end - begin);
  if (!wire_rounds()) {
    dp_.all_reduce_sum_start(in_place);
    return;
  }
  WireSlot& slot = take_wire_slot(bucket, bucket_elems_);
  Tensor wire = flat_slice(slot.buffer, 0, end - begin);
  cast(in_place, wire);
  slot.ticket = dp_.all_reduce_sum_start(wire);
}

void GradAllReducer::land_wire(int bucket, const Tensor& slot) {
  Tensor dst = flat_slice(flat_, bucket_begin(bucket), bucket_numel(bucket));
  cast(flat_slice(slot, 0, bucket_numel(bucket)), dst);
}

void GradAllReducer::scale_reduced() {
  // One multiplication by (float)(1/dp) per element, as all_reduce_mean.
  scale_(flat_, mean_factor(dp_.size()));
}

uint64_t GradAllReducer::bytes_sent_per_call() const {
  if (dp_.size() == 1) return 0;
  uint64_t total = 0;
  for (int64_t begin = 0; begin < layout_.numel(); begin += bucket_elems_) {
    const int64_t len = std::min(layout_.numel(), begin + bucket_elems_) - begin;
    total += all_reduce_bytes_sent(len, wire_elem_bytes(), dp_.size(), dp_.rank());
  }
  return total;
}

// ---- ZeRO-1 -------------------------------------------------------------------

int64_t bucket_elems_for(int64_t bucket_bytes, DType dtype) {
  RWKV_CHECK(bucket_bytes > 0, "bucket size must be positive, got ", bucket_bytes, " bytes");
  return elems_in(bucket_bytes, dtype);
}

ZeroPartition::ZeroPartition(const FlatLayout& layout, int dp, int64_t align, int64_t bucket_elems)
    : dp_(dp), numel_(layout.numel()) {
  RWKV_CHECK(dp >= 1, "ZeroPartition: dp must be at least 1, got ", dp);
  RWKV_CHECK(align >= 1, "ZeroPartition: align must be at least 1 element, got ", align);
  RWKV_CHECK(bucket_elems >= 1, "ZeroPartition: bucket_elems must be at least 1, got ", bucket_elems);
  // Sizes in units of dp * align (one aligned chunk per rank); at least one
  // unit, so an empty store still partitions.
  const int64_t unit = int64_t{dp} * align;
  auto round_up = [unit](int64_t n) { return std::max<int64_t>(1, (n + unit - 1) / unit) * unit; };
  const int64_t whole = round_up(numel_);
  bucket_ = std::min(round_up(bucket_elems), whole);
  buckets_ = static_cast<int>((whole + bucket_ - 1) / bucket_);
  last_chunk_ = round_up(numel_ - bucket_begin(buckets_ - 1)) / dp;
  shard_ = shard_offset(buckets_ - 1) + last_chunk_;
  pieces_.resize(static_cast<size_t>(dp));
  for (int b = 0; b < buckets_; ++b)
    for (int r = 0; r < dp; ++r) {
      const int64_t begin = bucket_begin(b) + int64_t{r} * chunk_numel(b);
      for (const FlatPiece& p : layout.pieces(begin, begin + chunk_numel(b))) {
        ShardPiece piece;
        static_cast<FlatPiece&>(piece) = p;
        piece.shard_offset = shard_offset(b) + (p.flat_offset - begin);
        pieces_[static_cast<size_t>(r)].push_back(piece);
      }
    }
}

ZeroOneSync::ZeroOneSync(const ParameterStore& params, Communicator& dp, int64_t bucket_bytes, int64_t align,
                         std::optional<DType> wire)
    : BucketedReduction("ZeroOneSync", params, dp, wire),
      partition_(layout_, dp.size(), align, bucket_elems_for(bucket_bytes, layout_.dtype())),
      shard_(Tensor::zeros({partition_.shard_numel()}, layout_.dtype(), layout_.device())),
      staging_(Tensor::empty({partition_.bucket_numel(0)}, layout_.dtype(), layout_.device())) {}

void ZeroOneSync::start_bucket(int bucket) {
  const int64_t begin = partition_.bucket_begin(bucket), len = partition_.bucket_numel(bucket);
  Tensor out = flat_slice(shard_, partition_.shard_offset(bucket), partition_.chunk_numel(bucket));
  // The bucket's chunks are consecutive in flat order: [dp, chunk] is the
  // reduce-scatter's input as it lies, unless it runs past the store
  // (padding). Only the last bucket is padded; it is the first started, and
  // nothing else uses staging until finish_overlap has waited.
  const bool in_place = flat_.defined() && begin + len <= layout_.numel();
  Tensor in = in_place ? flat_slice(flat_, begin, len) : flat_slice(staging_, 0, len);
  if (!in_place) pack(*grads_, layout_, begin, begin + len, in);
  if (!wire_rounds()) {
    dp_.reduce_scatter_sum_start(in, out);
    return;
  }
  // bf16 wire: the bucket rounded into a slot, reduced in place there (this
  // rank's chunk of the slot receives the sum), landed in the shard later.
  WireSlot& slot = take_wire_slot(bucket, partition_.bucket_numel(0));
  Tensor wire = flat_slice(slot.buffer, 0, len);
  cast(in, wire);
  Tensor wire_out = flat_slice(wire, int64_t{dp_.rank()} * partition_.chunk_numel(bucket), partition_.chunk_numel(bucket));
  slot.ticket = dp_.reduce_scatter_sum_start(wire, wire_out);
}

void ZeroOneSync::land_wire(int bucket, const Tensor& slot) {
  const int64_t chunk = partition_.chunk_numel(bucket);
  Tensor dst = flat_slice(shard_, partition_.shard_offset(bucket), chunk);
  cast(flat_slice(slot, int64_t{dp_.rank()} * chunk, chunk), dst);
}

void ZeroOneSync::scale_reduced() {
  // One multiplication by (float)(1/dp) per element, as plain DP's mean.
  if (dp_.size() > 1) scale_(shard_, mean_factor(dp_.size()));
}

void ZeroOneSync::reduce_not_flat() {
  // Each bucket packed into the staging buffer and reduced before the next.
  for (int b = buckets() - 1; b >= 0; --b) {
    start_bucket(b);
    dp_.wait_started();
    land_wire_slots();
  }
  scale_reduced();
}

void ZeroOneSync::all_gather_params(const Tensor& master_shard, ParameterStore& params,
                                    const std::vector<Tensor>& copies) {
  start_all_gather_params(master_shard, params, copies, Tensor());  // no flat copies: every bucket completes
}

void ZeroOneSync::start_all_gather_params(const Tensor& master_shard, ParameterStore& params,
                                          const std::vector<Tensor>& copies, const Tensor& copies_flat) {
  const char* op = "ZeroOneSync::all_gather_params";
  expect_shape(op, "master_shard", master_shard, {partition_.shard_numel()}, "[shard_numel]");
  expect_dtype(op, "master_shard", master_shard, layout_.dtype());
  expect_device(op, "master_shard", master_shard, layout_.device());
  RWKV_CHECK(params.entries().size() == static_cast<size_t>(layout_.tensors()), op, ": the store has ",
             params.entries().size(), " tensors, the layout ", layout_.tensors());
  // A gather still in flight from before would land on what this one writes.
  wait_gathered(layout_.numel() + 1);
  // Tensors whose only form is a bf16 copy (master released): a bucket of
  // nothing else travels in bf16, half the bytes, and lands as it is.
  std::vector<bool> bf16_only(params.entries().size(), false);
  for (size_t t = 0; t < bf16_only.size() && !copies.empty(); ++t)
    bf16_only[t] = !params.entries()[t].value.defined() && copies[t].defined() && copies[t].dtype() == DType::BF16;
  // Which tensors are released changes at most twice a run: the buckets' kinds are kept.
  if (bf16_only != bf16_only_) {
    bf16_only_ = bf16_only;
    in_bf16_ = bf16_gather_buckets(partition_, layout_, bf16_only_);
  }
  // In place: a bf16 bucket's rows are its stretch of the flat copy buffer.
  const bool flat = copies_flat.defined() && copies_view_flat(copies, copies_flat);
  const int n = dp_.size(), me = dp_.rank();
  std::vector<bool> in_place(static_cast<size_t>(buckets()), false);
  for (int b = 0; b < buckets() && flat; ++b)
    in_place[static_cast<size_t>(b)] = in_bf16_[static_cast<size_t>(b)] &&
                                       partition_.bucket_begin(b) + partition_.bucket_numel(b) <= layout_.numel();
  // The rest first: they complete here, so nothing in flight waits behind them.
  for (int b = 0; b < buckets(); ++b)
    if (!in_place[static_cast<size_t>(b)]) gather_through_staging(b, master_shard, params, copies);
  in_flight_.assign(static_cast<size_t>(buckets()), false);
  tickets_.assign(static_cast<size_t>(buckets()), 0);
  first_in_flight_ = 0;
  for (int b = 0; b < buckets(); ++b) {
    if (!in_place[static_cast<size_t>(b)]) continue;
    const int64_t chunk = partition_.chunk_numel(b);
    Tensor rows = flat_slice(copies_flat, partition_.bucket_begin(b), int64_t{n} * chunk);  // [dp, chunk]
    Tensor mine = flat_slice(rows, int64_t{me} * chunk, chunk);
    cast(flat_slice(master_shard, partition_.shard_offset(b), chunk), mine);  // the rounding the copy would get
    tickets_[static_cast<size_t>(b)] = n > 1 ? dp_.all_gather_start(mine, rows) : 0;
    in_flight_[static_cast<size_t>(b)] = true;
    ++in_flight_count_;
  }
}

void ZeroOneSync::gather_through_staging(int b, const Tensor& master_shard, ParameterStore& params,
                                         const std::vector<Tensor>& copies) {
  const int n = dp_.size(), me = dp_.rank();
  const int64_t begin = partition_.bucket_begin(b), chunk = partition_.chunk_numel(b);
  const Tensor my_masters = flat_slice(master_shard, partition_.shard_offset(b), chunk);
  const bool bf16 = in_bf16_[static_cast<size_t>(b)];
  if (bf16 && !staging_bf16_.defined())
    staging_bf16_ = Tensor::empty({partition_.bucket_numel(0)}, DType::BF16, layout_.device());
  Tensor rows = flat_slice(bf16 ? staging_bf16_ : staging_, 0, int64_t{n} * chunk);  // [dp, chunk]: the bucket in flat order
  Tensor mine = flat_slice(rows, int64_t{me} * chunk, chunk);  // in place: my row is the input
  if (bf16) {
    cast(my_masters, mine);  // the same rounding the copy would get from the f32 value
  } else {
    mine.copy_from(my_masters);
  }
  if (n > 1) dp_.all_gather(mine, rows);
  unpack_to_weights(rows, layout_, begin, begin + int64_t{n} * chunk, params, copies);
}

bool ZeroOneSync::copies_view_flat(const std::vector<Tensor>& copies, const Tensor& copies_flat) const {
  if (copies_flat.dtype() != DType::BF16 || copies_flat.device() != layout_.device() || copies_flat.numel() < layout_.numel() ||
      copies.size() != static_cast<size_t>(layout_.tensors()))
    return false;
  const auto* base = static_cast<const char*>(copies_flat.raw_data());
  for (int t = 0; t < layout_.tensors(); ++t) {
    if (!bf16_only_[static_cast<size_t>(t)]) continue;
    const Tensor& c = copies[static_cast<size_t>(t)];
    if (static_cast<const char*>(c.raw_data()) != base + layout_.offset(t) * 2) return false;
  }
  return true;
}

void ZeroOneSync::wait_gathered(int64_t flat_end) {
  Communicator::Ticket last = 0;
  int b = first_in_flight_;
  for (; b < static_cast<int>(in_flight_.size()) && partition_.bucket_begin(b) < flat_end; ++b) {
    if (!in_flight_[static_cast<size_t>(b)]) continue;
    last = std::max(last, tickets_[static_cast<size_t>(b)]);
    in_flight_[static_cast<size_t>(b)] = false;
    --in_flight_count_;
  }
  first_in_flight_ = b;
  if (last > 0) dp_.wait_for(last);
}

std::vector<bool> bf16_gather_buckets(const ZeroPartition& partition, const FlatLayout& layout,
                                      const std::vector<bool>& bf16_only) {
  RWKV_CHECK(bf16_only.size() == static_cast<size_t>(layout.tensors()), "bf16_gather_buckets: ", bf16_only.size(),
             " flags for ", layout.tensors(), " tensors");
  std::vector<bool> out(static_cast<size_t>(partition.buckets()), false);
  for (int b = 0; b < partition.buckets(); ++b) {
    const int64_t begin = partition.bucket_begin(b);
    const std::vector<FlatPiece> pieces = layout.pieces(begin, begin + partition.bucket_numel(b));
    out[static_cast<size_t>(b)] = !pieces.empty() && std::all_of(pieces.begin(), pieces.end(), [&](const FlatPiece& p) {
      return bf16_only[static_cast<size_t>(p.tensor)];
    });
  }
  return out;
}

uint64_t ZeroOneSync::reduce_scatter_bytes_per_call() const {
  // Per bucket (dp-1) chunk e; over the buckets the chunks add up to S.
  return reduce_scatter_bytes_sent(partition_.shard_numel(), wire_elem_bytes(), dp_.size());
}

uint64_t ZeroOneSync::all_gather_bytes_per_call() const {
  return all_gather_bytes_sent(partition_.shard_numel(), static_cast<int64_t>(dtype_size(layout_.dtype())), dp_.size());
}

}  // namespace rwkv::parallel
