// Data parallelism over MPI: the bucketed all-reduce is the plain average,
// bit for bit, for any bucket size; ZeRO-1 (reduce-scatter, AdamW on the
// shard, all-gather) reproduces the replicated AdamW; the bytes each rank
// sends per step match the formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "mpi_test_util.h"
#include "parallel/comm_volume.h"
#include "parallel/data_parallel.h"
#include "parallel/process_groups.h"
#include "parallel/zero_optimizer.h"
#include "kernels/reduce.h"
#include "trainer/optimizer.h"

namespace rwkv::parallel {
namespace {

using namespace rwkv::parallel::test;

// A small model-like store: matrices (decayed) and vectors, with odd sizes.
ParameterStore make_store(DType dtype) {
  ParameterStore s;
  s.add("emb.weight", {7, 5}, dtype, true, 1.0f);
  s.add("blocks.0.att.time_decay", {13}, dtype, false, 2.0f);
  s.add("blocks.0.att.key.weight", {3, 3, 3}, dtype, true, 1.0f);
  s.add("blocks.0.att.time_first", {1}, dtype, false, 3.0f);
  s.add("head.weight", {8, 8}, dtype, true, 1.0f);
  return s;  // 35 + 13 + 27 + 1 + 64 = 140 elements
}

// Tensor i of replica `rank` holds value_at(rank, seed + i, element) * scale.
template <typename T>
void fill(ParameterStore& s, int rank, uint64_t seed, double scale = 1.0) {
  for (size_t i = 0; i < s.entries().size(); ++i) {
    Tensor& t = s.entries()[i].value;
    for (int64_t j = 0; j < t.numel(); ++j) t.data<T>()[j] = static_cast<T>(scale * value_at(rank, seed + i, j));
  }
}

// The plain average every path must reproduce: rank-order sum, times (float)(1/dp).
template <typename T>
ParameterStore reference_mean(int dp, const std::vector<int>& replica_ranks, uint64_t seed, double scale = 1.0) {
  ParameterStore mean = make_store(DTypeOf<T>::value);
  const T factor = static_cast<T>(1.0f / static_cast<float>(dp));
  for (size_t i = 0; i < mean.entries().size(); ++i) {
    Tensor& t = mean.entries()[i].value;
    for (int64_t j = 0; j < t.numel(); ++j) {
      T acc = static_cast<T>(scale * value_at(replica_ranks[0], seed + i, j));
      for (size_t q = 1; q < replica_ranks.size(); ++q)
        acc += static_cast<T>(scale * value_at(replica_ranks[q], seed + i, j));
      t.data<T>()[j] = acc * factor;
    }
  }
  return mean;
}

template <typename T>
bool stores_bitwise_equal(const ParameterStore& a, const ParameterStore& b) {
  for (size_t i = 0; i < a.entries().size(); ++i)
    if (!bitwise_equal(a.entries()[i].value.to_vector<T>(), b.entries()[i].value.to_vector<T>())) return false;
  return true;
}

std::vector<int> iota_ranks(int n) {
  std::vector<int> r(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  return r;
}

template <typename T>
void check_bucketed_all_reduce(Communicator& dp, int replica_rank, const std::vector<int>& replica_ranks) {
  const ParameterStore expected = reference_mean<T>(dp.size(), replica_ranks, 100);
  // 1 element per bucket, buckets that cut tensors, one bucket for all.
  for (int64_t bucket_bytes : {int64_t{1}, int64_t{100}, int64_t{560}, kDefaultBucketBytes}) {
    ParameterStore grads = make_store(DTypeOf<T>::value);
    fill<T>(grads, replica_rank, 100);
    GradAllReducer reducer(grads, dp, bucket_bytes);
    dp.reset_stats();
    reducer.all_reduce_mean(grads);
    EXPECT_TRUE(stores_bitwise_equal<T>(grads, expected)) << "bucket_bytes " << bucket_bytes;
    // Bytes per step: the all-reduce formula per bucket, as counted.
    EXPECT_EQ(dp.stats().total_sent(), reducer.bytes_sent_per_call());
    const int64_t e = sizeof(T), B = reducer.bucket_elems();
    uint64_t formula = 0;
    for (int64_t b = 0; b < 140; b += B)
      formula += all_reduce_bytes_sent(std::min<int64_t>(B, 140 - b), e, dp.size(), dp.rank());
    EXPECT_EQ(dp.stats().sent(CommOp::AllReduce), formula);
    if (B == 140 && dp.size() == 4) {
      EXPECT_EQ(formula, uint64_t(2 * 3 * 140 / 4 * e));  // 2 (n-1)/n N e
    }
    EXPECT_EQ(dp.stats().count(CommOp::AllReduce), uint64_t(dp.size() > 1 ? reducer.buckets() : 0));
  }
}

TEST(MpiDataParallel, BucketedAllReduceIsThePlainAverageForAnyBucketSize) {
  WorldComm w;
  check_bucketed_all_reduce<float>(w.comm, w.comm.rank(), iota_ranks(w.comm.size()));
  check_bucketed_all_reduce<double>(w.comm, w.comm.rank(), iota_ranks(w.comm.size()));
}

// The overlapped form on a flat store (ParameterStore::zeros_like_flat):
// buckets started as the tensors become final, from the last tensor back,
// give the same bits and the same bytes as all_reduce_mean; a store that is
// not flat falls back to all_reduce_mean.
template <typename T>
void check_overlapped_all_reduce(Communicator& dp, int replica_rank, const std::vector<int>& replica_ranks) {
  const ParameterStore expected = reference_mean<T>(dp.size(), replica_ranks, 100);
  for (int64_t bucket_bytes : {int64_t{1}, int64_t{100}, int64_t{560}, kDefaultBucketBytes}) {
    ParameterStore grads = make_store(DTypeOf<T>::value).zeros_like_flat();
    ASSERT_TRUE(grads.flat().defined());
    fill<T>(grads, replica_rank, 100);
    GradAllReducer reducer(grads, dp, bucket_bytes);
    dp.reset_stats();
    reducer.begin_overlap(grads);
    // Backward order: head, then the block's tensors, the embedding last.
    for (int tensor : {4, 2, 1}) reducer.grads_final_from(tensor);
    const int early = reducer.buckets_started_early();
    reducer.finish_overlap();
    EXPECT_TRUE(stores_bitwise_equal<T>(grads, expected)) << "bucket_bytes " << bucket_bytes;
    EXPECT_EQ(dp.stats().total_sent(), reducer.bytes_sent_per_call());
    EXPECT_EQ(dp.stats().count(CommOp::AllReduce), uint64_t(dp.size() > 1 ? reducer.buckets() : 0));
    // Only buckets wholly inside tensors 1.. (flat offset 35 on) start early.
    const int64_t B = reducer.bucket_elems();
    int expected_early = 0;
    for (int64_t b = 0; b < 140; b += B) expected_early += b >= 35 ? 1 : 0;
    EXPECT_EQ(early, dp.size() > 1 ? expected_early : 0) << "bucket_bytes " << bucket_bytes;
  }
  // Not flat: the same result through all_reduce_mean at finish.
  ParameterStore separate = make_store(DTypeOf<T>::value);
  fill<T>(separate, replica_rank, 100);
  GradAllReducer reducer(separate, dp, 100);
  reducer.begin_overlap(separate);
  reducer.grads_final_from(2);
  EXPECT_EQ(reducer.buckets_started_early(), 0);
  reducer.finish_overlap();
  EXPECT_TRUE(stores_bitwise_equal<T>(separate, expected));
}

TEST(MpiDataParallel, OverlappedAllReduceIsBitIdenticalToTheBucketedOne) {
  WorldComm w;
  check_overlapped_all_reduce<float>(w.comm, w.comm.rank(), iota_ranks(w.comm.size()));
  check_overlapped_all_reduce<double>(w.comm, w.comm.rank(), iota_ranks(w.comm.size()));
}

TEST(MpiDataParallel, BucketedAllReduceOverTheDpGroupsOfA2x2Layout) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  ProcessGroups groups(2, 2, 1);
  // Replicas of one tp shard: the dp group members, by world rank.
  check_bucketed_all_reduce<float>(groups.dp(), groups.topology().rank(), groups.topology().group_ranks(GroupKind::Dp));
}

// Rank r's ZeRO-1 shard of a store: its chunk of every bucket, in shard order.
Tensor shard_of(const ParameterStore& store, const FlatLayout& layout, const ZeroPartition& part, int r) {
  Tensor out = Tensor::zeros({part.shard_numel()}, layout.dtype());
  for (int b = 0; b < part.buckets(); ++b) {
    const int64_t chunk = part.chunk_numel(b), begin = part.bucket_begin(b) + r * chunk;
    pack(store, layout, begin, begin + chunk, flat_slice(out, part.shard_offset(b), chunk));
  }
  return out;
}

// ZeRO-1's reduce-scatter overlapped with backward, on a flat store: each
// bucket starts once backward has finished every tensor in it, and the shard
// holds the same bits as the plain mean's chunks; the bytes are those of
// reduce_mean. A store that is not flat reduces at finish_overlap.
template <typename T>
void check_overlapped_zero_reduce_scatter(Communicator& dp) {
  const int n = dp.size(), r = dp.rank();
  const ParameterStore expected = reference_mean<T>(n, iota_ranks(n), 100);
  for (int64_t bucket_bytes : {int64_t{1}, int64_t{100}, int64_t{560}, kDefaultBucketBytes}) {
    SCOPED_TRACE("bucket_bytes " + std::to_string(bucket_bytes));
    for (bool flat : {true, false}) {
      ParameterStore grads = flat ? make_store(DTypeOf<T>::value).zeros_like_flat() : make_store(DTypeOf<T>::value);
      fill<T>(grads, r, 100);
      ZeroOneSync sync(grads, dp, bucket_bytes, /*align=*/4);
      const ZeroPartition& part = sync.partition();
      dp.reset_stats();
      sync.begin_overlap(grads);
      for (int tensor : {4, 2, 1}) sync.grads_final_from(tensor);  // backward order
      const int early = sync.buckets_started_early();
      sync.finish_overlap();
      EXPECT_TRUE(bitwise_equal(sync.grad_shard().to_vector<T>(), shard_of(expected, sync.layout(), part, r).to_vector<T>()))
          << (flat ? "flat" : "separate");
      EXPECT_EQ(dp.stats().sent(CommOp::ReduceScatter), sync.reduce_scatter_bytes_per_call());
      EXPECT_EQ(dp.stats().count(CommOp::ReduceScatter), uint64_t(sync.buckets()));
      // Only buckets wholly inside tensors 1.. (flat offset 35 on) start early.
      int expected_early = 0;
      for (int b = 0; b < part.buckets(); ++b) expected_early += part.bucket_begin(b) >= 35 ? 1 : 0;
      EXPECT_EQ(early, flat ? expected_early : 0) << (flat ? "flat" : "separate");
      if (flat && bucket_bytes == 100) {
        EXPECT_GT(early, 1);  // the overlap is real: several buckets early
      }
    }
  }
}

TEST(MpiDataParallel, OverlappedZeroReduceScatterIsBitIdenticalToThePlainMean) {
  WorldComm w;
  check_overlapped_zero_reduce_scatter<float>(w.comm);
  check_overlapped_zero_reduce_scatter<double>(w.comm);
}

// The bf16 gradient wire (parallel.grad_reduce_dtype: bf16): the mean of
// the gradients each rounded to bf16, summed in f32 in rank order and
// rounded once (the MPI communicator's bf16 sum), back in f32 and times
// (float)(1/dp). One replica reduces nothing and rounds nothing.
ParameterStore reference_bf16_wire_mean(int dp, uint64_t seed) {
  ParameterStore mean = make_store(DType::F32);
  const float factor = 1.0f / static_cast<float>(dp);
  for (size_t i = 0; i < mean.entries().size(); ++i) {
    Tensor& t = mean.entries()[i].value;
    for (int64_t j = 0; j < t.numel(); ++j) {
      auto g = [&](int q) { return static_cast<float>(value_at(q, seed + i, j)); };
      if (dp == 1) {
        t.data<float>()[j] = g(0);
        continue;
      }
      float acc = bf16_to_float(float_to_bf16(g(0)));
      for (int q = 1; q < dp; ++q) acc += bf16_to_float(float_to_bf16(g(q)));
      t.data<float>()[j] = bf16_to_float(float_to_bf16(acc)) * factor;
    }
  }
  return mean;
}

TEST(MpiDataParallel, Bf16WireIsTheMeanOfRoundedGradientsForAnyBucketSizeAndOverlap) {
  WorldComm w;
  Communicator& dp = w.comm;
  const int n = dp.size(), r = dp.rank();
  const ParameterStore expected = reference_bf16_wire_mean(n, 100);
  // 140 buckets of one element, 6 of 25 (more than the ring's slots: slots
  // are reused while earlier buckets are in flight), 1 of 140.
  for (int64_t bucket_bytes : {int64_t{4}, int64_t{100}, kDefaultBucketBytes}) {
    SCOPED_TRACE("bucket_bytes " + std::to_string(bucket_bytes));
    for (bool flat : {true, false}) {
      // Plain DP: overlapped (flat) or packed (separate tensors).
      ParameterStore grads = flat ? make_store(DType::F32).zeros_like_flat() : make_store(DType::F32);
      fill<float>(grads, r, 100);
      GradAllReducer reducer(grads, dp, bucket_bytes, DType::BF16);
      EXPECT_EQ(reducer.wire_dtype(), DType::BF16);
      dp.reset_stats();
      reducer.begin_overlap(grads);
      for (int tensor : {4, 2, 1}) reducer.grads_final_from(tensor);
      reducer.finish_overlap();
      EXPECT_TRUE(stores_bitwise_equal<float>(grads, expected)) << (flat ? "flat" : "separate");
      EXPECT_EQ(dp.stats().sent(CommOp::AllReduce), reducer.bytes_sent_per_call());
      uint64_t half = 0;  // the f32 wire's formula with 2-byte elements
      for (int64_t b = 0; b < 140; b += reducer.bucket_elems())
        half += all_reduce_bytes_sent(std::min<int64_t>(reducer.bucket_elems(), 140 - b), 2, n, r);
      EXPECT_EQ(reducer.bytes_sent_per_call(), half);

      // ZeRO-1: the shard holds the same elements of the same mean.
      ParameterStore zgrads = flat ? make_store(DType::F32).zeros_like_flat() : make_store(DType::F32);
      fill<float>(zgrads, r, 100);
      ZeroOneSync sync(zgrads, dp, bucket_bytes, /*align=*/4, DType::BF16);
      dp.reset_stats();
      sync.begin_overlap(zgrads);
      for (int tensor : {4, 2, 1}) sync.grads_final_from(tensor);
      sync.finish_overlap();
      EXPECT_TRUE(bitwise_equal(sync.grad_shard().to_vector<float>(),
                                shard_of(expected, sync.layout(), sync.partition(), r).to_vector<float>()))
          << (flat ? "flat" : "separate");
      EXPECT_EQ(dp.stats().sent(CommOp::ReduceScatter), sync.reduce_scatter_bytes_per_call());
      EXPECT_EQ(sync.reduce_scatter_bytes_per_call(),
                n > 1 ? reduce_scatter_bytes_sent(sync.partition().shard_numel(), 2, n) : 0u);
    }
  }
  // The same reducer twice: a second step reuses the ring and gives the same bits.
  ParameterStore grads = make_store(DType::F32).zeros_like_flat();
  GradAllReducer reducer(grads, dp, 100, DType::BF16);
  for (int step = 0; step < 2; ++step) {
    fill<float>(grads, r, 100);
    reducer.reduce_mean(grads);
    EXPECT_TRUE(stores_bitwise_equal<float>(grads, expected)) << "step " << step;
  }
}

TEST(MpiDataParallel, ABf16WireNeedsF32Gradients) {
  WorldComm w;
  ParameterStore f64 = make_store(DType::F64);
  try {
    GradAllReducer reducer(f64, w.comm, 100, DType::BF16);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GradAllReducer: cannot reduce f64 gradients over a bf16 wire"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ZeroOneSync(f64, w.comm, 100, 4, DType::BF16), Error);
  // The gradients' own dtype is always a wire.
  GradAllReducer same(f64, w.comm, 100, DType::F64);
  EXPECT_EQ(same.wire_dtype(), DType::F64);
}

// ZeRO-1 against the replicated optimizer: every rank runs the replicated
// AdamW on the all-reduced gradients locally (the reference), and ZeRO-1
// through the communicator; the parameters after `steps` steps must agree.
template <typename T>
void check_zero_matches_replicated(Communicator& dp, float grad_clip, double grad_scale, bool bitwise) {
  const int n = dp.size(), r = dp.rank();
  AdamWSettings settings;
  settings.weight_decay = 0.1f;
  settings.grad_clip = grad_clip;

  ParameterStore ref_params = make_store(DTypeOf<T>::value);
  fill<T>(ref_params, 1000, 7);  // the same initial parameters everywhere
  ParameterStore params = make_store(DTypeOf<T>::value);
  fill<T>(params, 1000, 7);
  AdamWOptimizer replicated(ref_params, settings);

  ZeroOneSync sync(params, dp, /*bucket_bytes=*/96, /*align=*/4);  // several buckets, padding
  const ZeroPartition& part = sync.partition();
  ShardedAdamW sharded(params, part, r, settings);
  const Tensor& grad_shard = sync.grad_shard();
  const int steps = 3;
  for (int step = 0; step < steps; ++step) {
    const uint64_t seed = 200 + 10 * static_cast<uint64_t>(step);
    ParameterStore grads = make_store(DTypeOf<T>::value);
    fill<T>(grads, r, seed, grad_scale);
    replicated.step(ref_params, reference_mean<T>(n, iota_ranks(n), seed, grad_scale), 1e-2);

    dp.reset_stats();
    sync.reduce_mean(grads);
    // The shard of the mean equals the same chunks of the plain mean.
    const Tensor expected_shard = shard_of(reference_mean<T>(n, iota_ranks(n), seed, grad_scale), sync.layout(), part, r);
    EXPECT_TRUE(bitwise_equal(grad_shard.to_vector<T>(), expected_shard.to_vector<T>())) << "step " << step;

    sharded.step(params, grad_shard, 1e-2, dp);
    sync.all_gather_params(sharded.master_shard(), params);
    // Bytes per step: reduce-scatter (n-1) S e + all-gather (n-1) S e + the norm's all-reduce of one f64.
    const uint64_t S = static_cast<uint64_t>(part.shard_numel()), e = sizeof(T);
    EXPECT_EQ(dp.stats().sent(CommOp::ReduceScatter), uint64_t(n - 1) * S * e);
    EXPECT_EQ(dp.stats().sent(CommOp::AllGather), uint64_t(n - 1) * S * e);
    EXPECT_EQ(dp.stats().sent(CommOp::ReduceScatter), sync.reduce_scatter_bytes_per_call());
    EXPECT_EQ(dp.stats().sent(CommOp::AllGather), sync.all_gather_bytes_per_call());
    EXPECT_EQ(dp.stats().sent(CommOp::AllReduce), all_reduce_bytes_sent(1, 8, n, r));
  }
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const auto got = params.entries()[i].value.to_vector<T>();
    const auto want = ref_params.entries()[i].value.to_vector<T>();
    if (bitwise) {
      EXPECT_TRUE(bitwise_equal(got, want)) << params.entries()[i].name;
    } else {
      for (size_t j = 0; j < got.size(); ++j)
        EXPECT_NEAR(got[j], want[j], 1e-6 * (1.0 + std::abs(static_cast<double>(want[j]))))
            << params.entries()[i].name << "[" << j << "]";
    }
  }
  // Every replica ends with the same parameters.
  uint64_t h = 0;
  for (const NamedTensor& e : params.entries()) h = h * 31 + hash_bytes(e.value);
  EXPECT_EQ(sharded.steps_taken(), steps);
  Tensor mine = Tensor::from_vector<int64_t>({static_cast<int64_t>(h)}, {1});
  Tensor all = Tensor::empty({n}, DType::I64);
  dp.all_gather(mine, all);
  for (int64_t v : all.to_vector<int64_t>()) EXPECT_EQ(v, static_cast<int64_t>(h));
}

// ZeRO-1's all-gather into bf16 compute copies whose f32 masters are
// released (mixed precision): every copy holds bf16(the owner's master)
// bit for bit; buckets of released tensors alone travel in bf16, the rest
// in f32 into the masters that remain and the copies beside them.
// in_place: the copies are views of one flat bf16 buffer (as
// Rwkv4Model::compute_copies_flat) and start_all_gather_params leaves the
// bf16 buckets' gathers in flight; the result must be the same bits.
void check_zero_gather_into_bf16_copies(Communicator& dp, bool in_place) {
  const int n = dp.size(), r = dp.rank();
  for (int64_t bucket_bytes : {int64_t{1}, int64_t{100}, int64_t{560}, kDefaultBucketBytes}) {
    SCOPED_TRACE("bucket_bytes " + std::to_string(bucket_bytes) + (in_place ? ", in place" : ""));
    ParameterStore expected = make_store(DType::F32);
    fill<float>(expected, 1000, 7);  // the masters after the update, the same on every rank
    ParameterStore params = make_store(DType::F32);
    ZeroOneSync sync(params, dp, bucket_bytes, /*align=*/4);
    const ZeroPartition& part = sync.partition();
    const FlatLayout& layout = sync.layout();
    // This rank's master shard: its pieces of the expected masters.
    Tensor master_shard = Tensor::zeros({part.shard_numel()}, DType::F32);
    for (const ShardPiece& piece : part.pieces(r))
      flat_slice(master_shard, piece.shard_offset, piece.length)
          .copy_from(flat_slice(expected.entries()[static_cast<size_t>(piece.tensor)].value, piece.tensor_offset, piece.length));
    // The matrices get bf16 copies and lose their masters; the vectors
    // (time_decay, time_first) keep an f32 master and have no copy.
    Tensor copies_flat = Tensor::zeros({layout.numel()}, DType::BF16);
    std::vector<Tensor> copies(params.entries().size());
    std::vector<bool> released(params.entries().size(), false);
    for (size_t t = 0; t < params.entries().size(); ++t) {
      NamedTensor& e = params.entries()[t];
      if (e.value.ndim() < 2) continue;
      copies[t] = in_place ? flat_slice(copies_flat, layout.offset(static_cast<int>(t)), e.value.numel()).view(e.value.shape())
                           : Tensor::zeros(e.value.shape(), DType::BF16);
      e.value = Tensor();
      released[t] = true;
    }
    dp.reset_stats();
    if (in_place) {
      sync.start_all_gather_params(master_shard, params, copies, copies_flat);
    } else {
      sync.all_gather_params(master_shard, params, copies);
    }
    uint64_t want_bytes = 0;
    int want_in_flight = 0;
    const std::vector<bool> in_bf16 = bf16_gather_buckets(part, layout, released);
    for (int b = 0; b < part.buckets(); ++b) {
      const bool bf16 = in_bf16[static_cast<size_t>(b)];
      want_bytes += all_gather_bytes_sent(part.chunk_numel(b), bf16 ? 2 : 4, n);
      // In flight: the bf16 buckets that end inside the store (the padded last one goes through staging).
      if (in_place && bf16 && part.bucket_begin(b) + part.bucket_numel(b) <= layout.numel()) ++want_in_flight;
    }
    EXPECT_EQ(dp.stats().sent(CommOp::AllGather), want_bytes);
    EXPECT_EQ(sync.gathers_in_flight(), want_in_flight);
    if (n > 1 && bucket_bytes == 100) {
      // Both kinds occur: buckets inside a matrix, and buckets touching a vector.
      EXPECT_NE(std::count(in_bf16.begin(), in_bf16.end(), true), 0);
      EXPECT_NE(std::count(in_bf16.begin(), in_bf16.end(), false), 0);
    }
    // The smallest buckets (dp x align elements) leave some inside emb.weight alone.
    if (in_place && bucket_bytes == 1) {
      EXPECT_GT(want_in_flight, 0);
    }
    // Forward waits tensor by tensor: after waiting for flat [0, offset of
    // tensor t), the buckets beginning at or after it are still in flight.
    for (int t = 0; t <= layout.tensors(); ++t) {
      const int64_t end = t < layout.tensors() ? layout.offset(t) : layout.numel() + 1;
      sync.wait_gathered(end);
      int still = 0;
      for (int b = 0; b < part.buckets(); ++b)
        if (in_place && in_bf16[static_cast<size_t>(b)] && part.bucket_begin(b) >= end &&
            part.bucket_begin(b) + part.bucket_numel(b) <= layout.numel())
          ++still;
      EXPECT_EQ(sync.gathers_in_flight(), still) << "after waiting for flat [0, " << end << ")";
    }
    for (size_t t = 0; t < params.entries().size(); ++t) {
      const NamedTensor& want = expected.entries()[t];
      if (!released[t]) {
        EXPECT_TRUE(bitwise_equal(params.entries()[t].value.to_vector<float>(), want.value.to_vector<float>())) << want.name;
        continue;
      }
      Tensor rounded = Tensor::zeros(want.value.shape(), DType::BF16);
      cast(want.value, rounded);
      EXPECT_TRUE(bitwise_equal(copies[t].to_vector<bf16>(), rounded.to_vector<bf16>())) << want.name;
    }
  }
}

TEST(MpiDataParallel, ZeroAllGatherWritesBf16CopiesAndSendsReleasedBucketsInBf16) {
  WorldComm w;
  check_zero_gather_into_bf16_copies(w.comm, /*in_place=*/false);
}

TEST(MpiDataParallel, ZeroAllGatherInPlaceIntoFlatCopiesLeavesBf16BucketsInFlightWithTheSameBits) {
  WorldComm w;
  check_zero_gather_into_bf16_copies(w.comm, /*in_place=*/true);
}

TEST(MpiDataParallel, ZeroOneWithoutClippingIsBitIdenticalToReplicatedAdamW) {
  WorldComm w;
  check_zero_matches_replicated<float>(w.comm, /*grad_clip=*/0.0f, 1.0, /*bitwise=*/true);
  check_zero_matches_replicated<double>(w.comm, 0.0f, 1.0, true);
}

TEST(MpiDataParallel, ZeroOneWithClippingMatchesReplicatedAdamW) {
  // Gradients of norm >> 1: clipping is active. The norm is summed per shard
  // instead of per tensor, so the clip factor may differ in its last bit.
  WorldComm w;
  check_zero_matches_replicated<float>(w.comm, 1.0f, 10.0, false);
  check_zero_matches_replicated<double>(w.comm, 1.0f, 10.0, false);
}

}  // namespace
}  // namespace rwkv::parallel
